"""Agency-side re-identification: handles -> per-quartier CCAS lists, outcome feedback.

See docs/CONTRACTS.md. Public API: `reidentify`, `ReidentifyResult` (imported on first use).
"""

from typing import TYPE_CHECKING

from pipeline.common.lazy import lazy_exports

if TYPE_CHECKING:
    from pipeline.agency.reidentify.api import ReidentifyResult, reidentify

__all__ = ["ReidentifyResult", "reidentify"]
__getattr__ = lazy_exports(__name__, dict.fromkeys(__all__, "pipeline.agency.reidentify.api"))
