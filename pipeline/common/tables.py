"""Deterministic Parquet I/O: same rows in, same bytes out.

Polars and DuckDB may return rows in any order after a parallel step; every table we write is
sorted on an explicit key first, so reruns with the same inputs, key and seed are byte-identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from pipeline.common.files import atomic_path


def write_parquet(
    df: pl.DataFrame, target: str | Path, *, sort_by: Sequence[str], private: bool = False
) -> Path:
    """Sort on `sort_by` and write atomically (owner-only when `private`)."""
    df = df.sort(list(sort_by), nulls_last=True, maintain_order=True)
    with atomic_path(target, private=private) as tmp:
        df.write_parquet(tmp, compression="zstd", statistics=False)
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
