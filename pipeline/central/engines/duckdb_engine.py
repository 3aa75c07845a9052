"""DuckDB: in memory, spilling to a folder beyond its memory limit (out of core on large files)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import polars as pl

from pipeline.central.engines.base import Engine, Table
from pipeline.central.engines.settings import EngineSettings
from pipeline.common.errors import InputError


def _safe_size(value: str) -> str:
    cleaned = value.strip().replace(" ", "")
    if not cleaned or not all(ch.isalnum() or ch == "." for ch in cleaned):
        raise InputError("memory_limit",
                         f"limite mémoire invalide (attendu p. ex. 4GB) : {value!r}")
    return cleaned


def sql_str(value: str) -> str:
    """A Python string as the body of a SQL string literal."""
    return value.replace("'", "''")


class DuckDBEngine(Engine):
    dialect = "duckdb"
    out_of_memory = (duckdb.OutOfMemoryException,)
    error = duckdb.Error

    def __init__(self, settings: EngineSettings) -> None:
        super().__init__(settings)
        con = duckdb.connect(":memory:")
        spill = Path(settings.temp_dir) if settings.temp_dir is not None else (
            Path(tempfile.gettempdir()) / "nonrecours-duckdb")
        spill.mkdir(parents=True, exist_ok=True)
        con.execute(f"SET memory_limit = '{_safe_size(settings.memory_limit)}'")
        con.execute(f"SET temp_directory = '{sql_str(str(spill))}'")
        con.execute("SET preserve_insertion_order = false")
        con.execute("SET enable_progress_bar = false")
        if settings.threads is not None:
            con.execute(f"SET threads = {int(settings.threads)}")
        self.con = con

    def create(self, name: str, select_sql: str) -> Table:
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS\n{select_sql}")
        return Table(name)

    def view(self, name: str, select_sql: str) -> Table:
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS\n{select_sql}")
        return Table(name)

    def load_frame(self, name: str, frame: pl.DataFrame) -> Table:
        # plain (non-view) Arrow strings: DuckDB scans them faster
        arrow = frame.to_arrow(compat_level=pl.CompatLevel.oldest())
        self.con.register(f"{name}__arrow", arrow)
        try:
            return self.create(name, f"SELECT * FROM {name}__arrow")
        finally:
            self.con.unregister(f"{name}__arrow")

    def collect(self, select_sql: str) -> pl.DataFrame:
        return self.con.sql(select_sql).pl()

    def rows(self, select_sql: str) -> list[tuple]:
        return self.con.execute(select_sql).fetchall()

    def columns(self, table: Table) -> list[str]:
        return [r[0] for r in self.con.execute(f"DESCRIBE {table}").fetchall()]

    def execute(self, statement: str) -> None:
        self.con.execute(statement)

    def drop(self, table: Table) -> None:
        self.con.execute(f"DROP TABLE IF EXISTS {table}")

    def close(self) -> None:
        self.con.close()
