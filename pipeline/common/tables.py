"""Deterministic Parquet I/O: same rows in, same bytes out.

Polars and DuckDB may return rows in any order after a parallel step; every table we write is
sorted on an explicit key first, so reruns with the same inputs, key and seed are byte-identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from pipeline.common.errors import InputError
from pipeline.common.files import atomic_path


def read_parquet(path: str | Path, what: str, *, required: Sequence[str] = ()) -> pl.DataFrame:
    """Read a stage's Parquet input; a missing, unreadable or incomplete file is an InputError
    naming the file (and the missing column), never a polars traceback."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, f"{what} introuvable")
    try:
        df = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(path, f"{what} illisible ({type(exc).__name__})") from exc
    for column in required:
        if column not in df.columns:
            raise InputError(path, f"colonne obligatoire absente ({what})", column=column)
    return df


def write_parquet(
    df: pl.DataFrame, target: str | Path, *, sort_by: Sequence[str], private: bool = False
) -> Path:
    """Sort on `sort_by` and write atomically (owner-only when `private`).

    zstd level 1, not polars' default 3: on an export of 25 hex-token columns it takes half the
    CPU time and gives a smaller file (random hex only yields to entropy coding, which level 1
    already does; 1M CAF rows: 294 MB in 3.0 s CPU against 309 MB in 6.6 s)."""
    df = df.sort(list(sort_by), nulls_last=True, maintain_order=True)
    with atomic_path(target, private=private) as tmp:
        df.write_parquet(tmp, compression="zstd", compression_level=1, statistics=False)
    return Path(target)


def write_csv(
    df: pl.DataFrame,
    target: str | Path,
    *,
    sort_by: Sequence[str] = (),
    private: bool = False,
    separator: str = ";",
) -> Path:
    """French-friendly CSV (`;`-separated, UTF-8 with BOM so Excel opens accents right)."""
    if sort_by:
        df = df.sort(list(sort_by), nulls_last=True, maintain_order=True)
    with atomic_path(target, private=private) as tmp, open(tmp, "wb") as f:
        f.write(b"\xef\xbb\xbf")
        df.write_csv(f, separator=separator)
    return Path(target)
