"""Agency-side pseudonymisation: keyed tokens, random handles, export, leakage checks.

See docs/CONTRACTS.md ("Pseudonymised export", "Handles table") and tokens.yaml. Public API
imported on first use, so mounting the CLI stays cheap.
"""

from typing import TYPE_CHECKING

from pipeline.common.lazy import lazy_exports

if TYPE_CHECKING:
    from pipeline.agency.pseudonymise.core import PseudonymiseResult, build, pseudonymise

__all__ = ["PseudonymiseResult", "build", "pseudonymise"]
__getattr__ = lazy_exports(__name__, dict.fromkeys(__all__, "pipeline.agency.pseudonymise.core"))
