"""DuckDB session for the linkage: resource limits, SQL templates, export loading and checks."""

from __future__ import annotations

import tempfile
from functools import cache
from importlib import resources
from pathlib import Path

import duckdb
import polars as pl

from pipeline.common.errors import InputError
from pipeline.match.config import Config


@cache
def sql_template(name: str) -> str:
    """A readable SQL file of pipeline/match/sql/ (auditors read these, not Python strings)."""
    return (resources.files("pipeline.match") / "sql" / f"{name}.sql").read_text(encoding="utf-8")


def connect(
    memory_limit: str, temp_dir: Path | None, threads: int | None
) -> duckdb.DuckDBPyConnection:
    """In-memory DuckDB that spills to `temp_dir` beyond `memory_limit` (out of core when large)."""
    con = duckdb.connect(":memory:")
    spill = Path(temp_dir) if temp_dir is not None else (
        Path(tempfile.gettempdir()) / "nonrecours-duckdb")
    spill.mkdir(parents=True, exist_ok=True)
    con.execute(f"SET memory_limit = '{_safe_size(memory_limit)}'")
    con.execute(f"SET temp_directory = '{_sql_str(str(spill))}'")
    con.execute("SET preserve_insertion_order = false")
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}")
    return con


def _safe_size(value: str) -> str:
    cleaned = value.strip().replace(" ", "")
    if not cleaned or not all(ch.isalnum() or ch == "." for ch in cleaned):
        raise InputError("memory_limit",
                         f"limite mémoire invalide (attendu p. ex. 4GB) : {value!r}")
    return cleaned


def _sql_str(value: str) -> str:
    return value.replace("'", "''")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def load_export(
    con: duckdb.DuckDBPyConnection, path: Path, table: str, alias: str, config: Config
) -> dict[str, object]:
    """Load the columns the model reads from one export; check handles; return load facts.

    A column the model references but the export lacks is read as NULL (CAF-only and CPAM-only
    tokens exist by design) and listed in the facts so the stats show it.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "fichier introuvable")
    try:
        schema = con.execute(
            f"DESCRIBE SELECT * FROM read_parquet('{_sql_str(str(path))}')"
        ).fetchall()
    except duckdb.Error as exc:
        raise InputError(path, "fichier Parquet illisible") from exc
    present = {row[0] for row in schema}
    for col in config.required_columns:
        if col not in present:
            raise InputError(path, "colonne obligatoire absente", column=col)
    wanted = sorted(config.referenced_columns(alias) | {"foyer", "sexe"})
    missing = [c for c in wanted if c not in present]
    columns = ",\n    ".join(_column_expr(c, c in present) for c in wanted)
    src = f"'{_sql_str(str(path))}'"
    try:
        con.execute(sql_template("load_export").format(table=table, columns=columns, path=src))
    except duckdb.Error as exc:
        raise InputError(path, "fichier Parquet illisible ou colonnes de type inattendu") from exc
    bad = con.execute(f"SELECT min(id) FROM {table}_handles WHERE handle IS NULL").fetchall()[0][0]
    if bad is not None:
        raise InputError(path, "identifiant de rattachement (handle) vide", line=int(bad) + 1,
                         column="handle")
    n, distinct = con.execute(
        f"SELECT count(*), count(DISTINCT handle) FROM {table}_handles").fetchall()[0]
    if n != distinct:
        dup = con.execute(
            "SELECT min(id) FROM (SELECT id, "
            f"row_number() OVER (PARTITION BY handle ORDER BY id) AS k FROM {table}_handles) "
            "WHERE k > 1"
        ).fetchall()[0][0]
        raise InputError(path, "identifiant de rattachement (handle) en double",
                         line=int(dup) + 1, column="handle")
    return {"rows": int(n), "missing_columns": missing}


def _column_expr(col: str, present: bool) -> str:
    """Tokens become 64-bit hashes (see load_export.sql); other columns pass through."""
    if col.startswith("tok_"):
        if not present:
            return f"NULL::UBIGINT AS {_ident(col)}"
        return (f"CASE WHEN {_ident(col)} IS NULL THEN NULL ELSE hash({_ident(col)}) END "
                f"AS {_ident(col)}")
    return _ident(col) if present else f"NULL AS {_ident(col)}"


def frame(con: duckdb.DuckDBPyConnection, query: str) -> pl.DataFrame:
    """Result of `query` as a polars frame (DuckDB 2: relations, not cursors, convert)."""
    return con.sql(query).pl()
