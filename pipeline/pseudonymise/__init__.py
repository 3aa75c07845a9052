"""Agency-side pseudonymisation: keyed tokens, random handles, export, leakage checks.

See docs/CONTRACTS.md ("Pseudonymised export", "Handles table") and tokens.yaml.
"""

from pipeline.pseudonymise.core import PseudonymiseResult, build, pseudonymise

__all__ = ["PseudonymiseResult", "build", "pseudonymise"]
