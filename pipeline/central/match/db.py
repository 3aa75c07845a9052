"""Loading and checking the exports for the linkage, on any engine (pipeline/central/engines).

The SQL of the linkage is in pipeline/central/match/sql/*.sql (auditors read these, not Python
strings);
`render` fills one, with the engine's own version where dialects differ (sql/<engine>/).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.central.engines.base import Engine, Table, sql_text
from pipeline.common.errors import InputError
from pipeline.shared.linkage_model import Config

PACKAGE = "pipeline.central.match"
# Optional column of the coverage side: the provider of each row (CPAM, MSA...), kept on the links.
PROVIDER_COLUMN = "fournisseur"
# Optional column of an export: the row's household holds an opposed person (no residue request).
OPPOSITION_COLUMN = "opposition"


def sql_template(name: str, dialect: str = "") -> str:
    """A readable SQL file of pipeline/central/match/sql/ (the dialect's own when there is one)."""
    return sql_text(PACKAGE, name, dialect)


def run(engine: Engine, name: str, target: str, /, **params: Any) -> Table:
    """Create table `target` from pipeline/central/match/sql/`name`.sql."""
    return engine.run(PACKAGE, name, target, **params)


def render(engine: Engine, name: str, /, **params: Any) -> str:
    return engine.sql(PACKAGE, name, **params)


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"' if name != name.lower() or " " in name else name


@dataclass(frozen=True)
class LoadedExport:
    """One side of the linkage: its records (`data`) and its handles, keyed by `id`."""

    data: Table
    handles: Table
    rows: int
    missing_columns: list[str]
    has_provider: bool
    has_opposition: bool = False


def _schemas(paths: Sequence[Path]) -> list[set[str]]:
    out = []
    for path in paths:
        if not path.exists():
            raise InputError(path, "fichier introuvable")
        try:
            out.append(set(pl.read_parquet_schema(path)))
        except Exception as exc:
            raise InputError(path, "fichier Parquet illisible") from exc
    return out


def _row_counts(paths: Sequence[Path]) -> list[int]:
    return [pl.scan_parquet(p).select(pl.len()).collect().item() for p in paths]


def _source(engine: Engine, table: str, paths: Sequence[Path], wanted: list[str]) -> str:
    """The rows of the files, in order, with `id` = position across the files."""
    if engine.dialect == "duckdb":
        from pipeline.central.engines.duckdb_engine import sql_str

        files = ", ".join(f"'{sql_str(str(p))}'" for p in paths)
        offsets = _offsets(paths)
        if len(paths) == 1:
            ident_expr = "file_row_number"
        else:
            whens = " ".join(f"WHEN '{sql_str(str(p))}' THEN {o}"
                             for p, o in zip(paths, offsets, strict=True))
            ident_expr = f"file_row_number + (CASE filename {whens} END)"
        return (f"(SELECT {ident_expr} AS id, * FROM read_parquet([{files}], "
                "file_row_number = true, filename = true, union_by_name = true)) AS src")
    # Other engines: the files are read here, in order, and handed over as one frame.
    frames = []
    for path in paths:
        cols = [c for c in pl.read_parquet_schema(path) if c in wanted]
        frames.append(pl.read_parquet(path, columns=cols))
    frame = (pl.concat(frames, how="diagonal_relaxed").with_row_index("id")
             .with_columns(pl.col("id").cast(pl.Int64)))
    return str(engine.load_frame(f"{table}_source", frame))


def _offsets(paths: Sequence[Path]) -> list[int]:
    counts = _row_counts(paths)
    return [sum(counts[:i]) for i in range(len(counts))]


def _column_expr(col: str, present: bool) -> str:
    """Tokens are 64-bit integers (export contract 5): a text column fails the cast loudly;
    others pass through."""
    if col.startswith("tok_"):
        return f"CAST({ident(col) if present else 'NULL'} AS BIGINT) AS {ident(col)}"
    return ident(col) if present else f"NULL AS {ident(col)}"


def _locate(paths: Sequence[Path], row_id: int) -> tuple[Path, int]:
    """The file and 1-based line of a row id counted across the files."""
    offsets = _offsets(paths) if len(paths) > 1 else [0]
    k = max(i for i, o in enumerate(offsets) if o <= row_id)
    return paths[k], row_id - offsets[k] + 1


def load_export(engine: Engine, paths: Path | Sequence[Path], table: str, alias: str,
                config: Config) -> LoadedExport:
    """Load the columns the model reads from one export (or the union of several, in order);
    check handles.

    A column the model references but the export lacks is read as NULL (CAF-only and CPAM-only
    tokens exist by design) and listed in the facts so the stats show it.
    """
    paths = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    schemas = _schemas(paths)
    for path, present in zip(paths, schemas, strict=True):
        for col in config.required_columns:
            if col not in present:
                raise InputError(path, "colonne obligatoire absente", column=col)
    present = set().union(*schemas)
    has_provider = PROVIDER_COLUMN in present
    has_opposition = OPPOSITION_COLUMN in present
    # the handle table carries what the outputs and the residue requests read besides the handle
    kept = [c for c, here in ((PROVIDER_COLUMN, has_provider),
                              (OPPOSITION_COLUMN, has_opposition)) if here]
    wanted = sorted(config.referenced_columns(alias) | {"foyer", "sexe"})
    missing = [c for c in wanted if c not in present]
    source = _source(engine, table, paths, [*wanted, "handle", *kept])
    columns = ",\n    ".join(_column_expr(c, c in present) for c in wanted)
    extra = "".join(f", {c}" for c in kept)
    try:
        handles = run(engine, "export_handles", f"{table}_handles", source=source, extra=extra)
        data = run(engine, "export_tokens", table, source=source, columns=columns)
    except engine.error as exc:
        reason = ("jeton non hexadécimal" if "hexad" in str(exc) or "0x" in str(exc)
                  else "fichier Parquet illisible ou colonnes de type inattendu")
        raise InputError(paths[0] if len(paths) == 1 else ", ".join(map(str, paths)),
                         reason) from exc
    n, distinct, bad = engine.rows(render(engine, "handle_counts", handles=handles))[0]
    if bad is not None:
        path, line = _locate(paths, int(bad))
        raise InputError(path, "identifiant de rattachement (handle) vide", line=line,
                         column="handle")
    if n != distinct:
        dup = engine.scalar(render(engine, "first_duplicate_handle", handles=handles))
        path, line = _locate(paths, int(dup))
        raise InputError(path, "identifiant de rattachement (handle) en double",
                         line=line, column="handle")
    return LoadedExport(data, handles, int(n), missing, has_provider, has_opposition)


def counts_by(engine: Engine, table: Table, column: str, where: str = "TRUE") -> dict[Any, int]:
    """{value: row count} of one column of a table."""
    rows = engine.rows(render(engine, "count_by", table=table, column=column, where=where))
    return {k: int(n) for k, n in rows}


def union_all(engine: Engine, target: str, tables: Sequence[Table]) -> Table:
    """A view of several tables of the same columns (never a copy)."""
    selects = "\nUNION ALL\n".join(f"SELECT * FROM {t}" for t in tables)
    return engine.view(target, render(engine, "union_all", selects=selects))
