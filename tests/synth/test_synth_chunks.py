"""Generation in chunks: lines, person ids, matricules and NIRs stay consistent over the run."""

from __future__ import annotations

import sys
from collections import Counter

import polars as pl
import pytest
from synth_read import caf, cpam, truth

from pipeline.synth import generate
from pipeline.synth.writer import CAF_COLUMNS, CPAM_COLUMNS


@pytest.fixture(scope="module")
def chunked(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("synth_chunked")
    mp = pytest.MonkeyPatch()
    mp.setattr(sys.modules["pipeline.synth.generate"], "CHUNK_HOUSEHOLDS", 400)
    try:
        counts = generate(1000, 99, 1.0, out)  # chunks of 400, 400, 200
    finally:
        mp.undo()
    return out, counts


def test_lines_and_ids_cover_every_row_once(chunked):
    out, counts = chunked
    persons = truth(out, "persons.csv")
    assert persons["person_id"].n_unique() == persons.height == counts["persons"]
    caf_rows, cpam_rows = caf(out), cpam(out)
    assert sorted(persons["caf_line"].drop_nulls().cast(pl.Int64)) == list(
        range(2, len(caf_rows) + 1))
    assert sorted(persons["cpam_line"].drop_nulls().cast(pl.Int64)) == list(
        range(2, len(cpam_rows) + 1))
    for row in persons.drop_nulls("caf_line").iter_rows(named=True):
        assert caf_rows[int(row["caf_line"]) - 1][0] == row["matricule"]
    assert counts["caf_households"] == 1000


def test_matricules_sorted_unique_and_nirs_unique(chunked):
    out, _ = chunked
    rows = caf(out)[1:]
    mats = [r[0] for r in rows]
    assert mats == sorted(mats)
    hh = truth(out, "households.csv")
    assert hh["matricule"].n_unique() == hh.height == 1000
    # a NIR belongs to one person across the whole file (CPAM own rows)
    own = Counter(r[CPAM_COLUMNS.index("nir_beneficiaire")] for r in cpam(out)[1:]
                  if len(r) == len(CPAM_COLUMNS) and r[CPAM_COLUMNS.index("qualite")] == "ASSURE")
    own.pop("", None)
    dup = [k for k, v in own.items() if v > 1]
    assert not dup
    assert len(caf(out)[0]) == len(CAF_COLUMNS)


def test_malformed_lines_point_into_the_right_chunk(chunked):
    out, counts = chunked
    m = truth(out, "malformed.csv")
    n_caf = len(caf(out))
    assert m.height == sum(counts["malformed_caf"].values()) + sum(
        counts["malformed_cpam"].values())
    caf_lines = m.filter(pl.col("fichier") == "raw/caf_extract.csv")["line"].cast(pl.Int64)
    assert caf_lines.max() <= n_caf
