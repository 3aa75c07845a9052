"""Central linkage: deterministic passes then Fellegi–Sunter, on DuckDB or Spark.

See docs/CONTRACTS.md.

Public API imported on first use, so mounting the CLI does not load an engine.
"""

from typing import TYPE_CHECKING

from pipeline.common.lazy import lazy_exports

if TYPE_CHECKING:
    from pipeline.central.match.engine import LinkResult, link

__all__ = ["LinkResult", "link"]
__getattr__ = lazy_exports(__name__, dict.fromkeys(__all__, "pipeline.central.match.engine"))
