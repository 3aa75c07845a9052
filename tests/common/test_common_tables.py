"""Shared table I/O: clear errors on bad inputs, byte-identical and private outputs."""

from __future__ import annotations

import stat

import polars as pl
import pytest

from pipeline.common.errors import InputError
from pipeline.common.tables import read_parquet, write_parquet


def test_missing_unreadable_and_incomplete_files_name_the_problem(tmp_path):
    with pytest.raises(InputError, match="liste de cibles introuvable"):
        read_parquet(tmp_path / "absent.parquet", "liste de cibles")
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(InputError, match=r"corrupt\.parquet : liste de cibles illisible"):
        read_parquet(corrupt, "liste de cibles")
    ok = tmp_path / "ok.parquet"
    pl.DataFrame({"handle": ["a"]}).write_parquet(ok)
    with pytest.raises(InputError) as err:
        read_parquet(ok, "liste de cibles", required=["handle", "foyer"])
    assert err.value.column == "foyer"
    assert read_parquet(ok, "liste de cibles", required=["handle"]).height == 1


def test_writes_are_sorted_byte_identical_and_private_on_request(tmp_path):
    df = pl.DataFrame({"k": [3, 1, 2], "v": ["c", "a", "b"]})
    a = write_parquet(df, tmp_path / "a.parquet", sort_by=["k"], private=True)
    b = write_parquet(df.reverse(), tmp_path / "b.parquet", sort_by=["k"])
    assert a.read_bytes() == b.read_bytes()
    assert pl.read_parquet(a)["k"].to_list() == [1, 2, 3]
    assert stat.S_IMODE(a.stat().st_mode) == 0o600
    assert stat.S_IMODE(b.stat().st_mode) == 0o644
    assert not list(tmp_path.glob(".*.tmp"))


def test_rows_already_in_order_write_the_same_bytes_as_rows_to_sort(tmp_path):
    """An engine's ORDER BY spares the writer its sort: same bytes as sorting a shuffled frame,
    whatever the chunks the engine handed over (ties on the first key, several chunks)."""
    n = 300
    df = pl.DataFrame({"a": [f"h{i // 3:04d}" for i in range(n)],
                       "b": [f"x{(7 * i) % 11:02d}" for i in range(n)],
                       "w": [float(i) for i in range(n)]})
    ordered = df.sort(["a", "b"], maintain_order=True)
    chunked = pl.concat([ordered.slice(i, 64) for i in range(0, n, 64)], rechunk=False)
    assert chunked.n_chunks() > 1
    shuffled = df.sample(fraction=1.0, shuffle=True, seed=3)
    a = write_parquet(chunked, tmp_path / "a.parquet", sort_by=["a", "b"])
    b = write_parquet(shuffled, tmp_path / "b.parquet", sort_by=["a", "b"])
    assert a.read_bytes() == b.read_bytes()
    # out of order on the second key only: sorted all the same
    swapped = pl.concat([ordered.slice(1, 1), ordered.slice(0, 1), ordered.slice(2)])
    c = write_parquet(swapped, tmp_path / "c.parquet", sort_by=["a", "b"])
    assert c.read_bytes() == b.read_bytes()
