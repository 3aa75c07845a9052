"""Central detection: rule catalogue (rules.yaml + SQL), CSS parameters, targets, aggregates.

See docs/CONTRACTS.md. Public API: `detect` (engine), `DetectResult`.
"""

from pipeline.detect.engine import DetectResult, detect

__all__ = ["DetectResult", "detect"]
