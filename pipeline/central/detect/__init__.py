"""Central detection: rule catalogue (rules.yaml + SQL), CSS parameters, targets, aggregates.

See docs/CONTRACTS.md. Public API: `detect` (engine), `DetectResult` (imported on first use).
"""

from typing import TYPE_CHECKING

from pipeline.common.lazy import lazy_exports

if TYPE_CHECKING:
    from pipeline.central.detect.engine import DetectResult, detect

__all__ = ["DetectResult", "detect"]
__getattr__ = lazy_exports(__name__, dict.fromkeys(__all__, "pipeline.central.detect.engine"))
