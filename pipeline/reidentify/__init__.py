"""Agency-side re-identification: handles -> per-quartier CCAS lists, outcome feedback.

See docs/CONTRACTS.md. Public API: `reidentify`, `ReidentifyResult`.
"""

from pipeline.reidentify.api import ReidentifyResult, reidentify

__all__ = ["ReidentifyResult", "reidentify"]
