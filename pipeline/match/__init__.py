"""Central linkage: deterministic passes then Fellegi–Sunter, in DuckDB (docs/CONTRACTS.md)."""

from pipeline.match.engine import LinkResult, link

__all__ = ["LinkResult", "link"]
