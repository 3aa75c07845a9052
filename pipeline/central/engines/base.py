"""The engine seam: tables as values, create-as steps, SQL kept in named .sql files.

A step is one SELECT in a .sql file of a package's `sql/` folder; its inputs are `{placeholders}`
filled with the names of `Table` values, and the engine materialises the result as a new table
(never INSERT, UPDATE or DELETE: iterative steps create a new table per round). Where dialects
differ, `sql/<dialect>/<name>.sql` replaces `sql/<name>.sql` for that engine only, as dbt
adapters and Splink's dialects do; everything else is written once in the SQL both engines read.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.central.engines.settings import EngineSettings


@dataclass(frozen=True)
class Table:
    """A table of an engine session, passed between steps as a value (its name in the session)."""

    name: str

    def __str__(self) -> str:  # so that a Table fills a {placeholder} of a .sql file
        return self.name


@cache
def _read_sql(package: str, dialect: str, name: str) -> str:
    root = resources.files(package) / "sql"
    special = root / dialect / f"{name}.sql"
    path = special if special.is_file() else root / f"{name}.sql"
    return path.read_text(encoding="utf-8")


def sql_text(package: str, name: str, dialect: str = "") -> str:
    """The text of `name`.sql of `package` (the dialect's own file when there is one)."""
    return _read_sql(package, dialect, name)


class Engine(ABC):
    """One session of one engine. Subclasses implement the few primitives below."""

    dialect: str = ""
    # Exceptions meaning "the engine ran out of memory": callers turn them into a French message.
    out_of_memory: tuple[type[BaseException], ...] = ()
    # The engine's own error class (a SQL statement it refused).
    error: type[BaseException] = Exception

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings

    # ------------------------------------------------------------------ primitives

    @abstractmethod
    def create(self, name: str, select_sql: str) -> Table:
        """Materialise `select_sql` as table `name` (replacing an older table of that name)."""

    @abstractmethod
    def view(self, name: str, select_sql: str) -> Table:
        """`select_sql` as a lazy view `name` (re-evaluated where it is read)."""

    @abstractmethod
    def load_frame(self, name: str, frame: pl.DataFrame) -> Table:
        """A polars frame as table `name`."""

    @abstractmethod
    def collect(self, select_sql: str) -> pl.DataFrame:
        """Run a SELECT and bring its result into polars."""

    @abstractmethod
    def columns(self, table: Table) -> list[str]:
        """Column names of a table, in order."""

    @abstractmethod
    def execute(self, statement: str) -> None:
        """A statement without result (session setup: function definitions)."""

    @abstractmethod
    def drop(self, table: Table) -> None:
        """Free a table no later step reads."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        """End the session (DuckDB: close; Spark: drop this session's tables)."""

    # ------------------------------------------------------------------ built on the primitives

    def sql(self, package: str, name: str, /, **params: Any) -> str:
        """A named .sql file of `package` with its placeholders filled (tables print as names)."""
        return sql_text(package, name, self.dialect).format(**params)

    def run(self, package: str, name: str, target: str, /, **params: Any) -> Table:
        """Create table `target` from the SELECT of `name`.sql (inputs and values in `params`)."""
        return self.create(target, self.sql(package, name, **params))

    def intermediate(self, name: str, select_sql: str) -> Table:
        """A result several later queries read, materialised once: as a view, each branch of a
        pass's union of joins (up to ~100 with the typo-tolerant keys) replayed its anti-join,
        and DuckDB ran out of its 4 GB on the 3x-noise bench case; as a table it ran in 3 s."""
        return self.create(name, select_sql)

    def rows(self, select_sql: str) -> list[tuple[Any, ...]]:
        return self.collect(select_sql).rows()

    def scalar(self, select_sql: str) -> Any:
        rows = self.rows(select_sql)
        return rows[0][0] if rows else None

    def count(self, table: Table) -> int:
        return int(self.scalar(f"SELECT count(*) FROM {table}"))

    def load_parquet(self, name: str, path: Path, columns: list[str] | None = None) -> Table:
        """A Parquet file as a table (default: through polars; engines may read it natively)."""
        return self.load_frame(name, pl.read_parquet(path, columns=columns))

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
