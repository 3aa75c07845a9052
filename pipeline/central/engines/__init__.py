"""Engines the central step runs on (DuckDB on one machine, Spark on a cluster).

The match and detect steps only speak to `Engine` (pipeline/central/engines/base.py): load a frame
or a
Parquet file as a table, create a table from a named .sql file whose inputs are tables passed as
values, collect a result to polars. Importing this package loads neither DuckDB nor PySpark.
"""

from pipeline.central.engines.settings import (
    ENGINES,
    EngineSettings,
    current_settings,
    use_settings,
)

__all__ = ["ENGINES", "EngineSettings", "current_settings", "open_engine", "use_settings"]


def open_engine(settings: EngineSettings | None = None):
    """A fresh engine session for `settings` (default: the ones in force, see use_settings)."""
    settings = settings or current_settings()
    if settings.name == "spark":
        from pipeline.central.engines.spark_engine import SparkEngine

        return SparkEngine(settings)
    from pipeline.central.engines.duckdb_engine import DuckDBEngine

    return DuckDBEngine(settings)
