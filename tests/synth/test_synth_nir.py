"""NIR keys: valid everywhere except the deliberately mistyped ones, which meta.json counts."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from stdnum.fr import nir as stdnum_nir
from synth_read import caf, cpam

from pipeline.synth import nir
from pipeline.synth.writer import CAF_COLUMNS, CPAM_COLUMNS


@pytest.mark.parametrize("value,valid", [
    ("255081416802538", True),   # the classic published example
    ("255081416802539", False),
    ("185052A00412356", True),   # Corsica: 2A -> 19 for the key
    ("185052B00412356", False),
    ("12345", False),
])
def test_key_is_valid(value, valid):
    assert nir.key_is_valid(value) is valid


def test_build_matches_stdnum_and_is_unique():
    rng = np.random.default_rng(0)
    n = 20000
    sexe = rng.integers(1, 3, n)
    place = pl.Series(["2A004", "2B033", "61169", "97411", "99350"]).gather(
        rng.integers(0, 5, n))
    prov = rng.random(n) < 0.2
    out = nir.build(sexe, rng.integers(1950, 2020, n), rng.integers(1, 13, n), place, prov)
    assert out.n_unique() == n and (out.str.len_chars() == 15).all()
    for v in out.head(500):
        assert stdnum_nir.is_valid(v), v
    assert out.str.slice(0, 1).is_in(["7", "8"]).sum() == int(prov.sum())


def test_orders_refuse_more_than_999_per_cell():
    from pipeline.common.errors import PipelineError
    with pytest.raises(PipelineError):
        nir.unique_orders(np.zeros(1000, dtype=np.int64))
    assert len(set(nir.unique_orders(np.zeros(999, np.int64)))) == 999
    # across chunks, a registry carries on where the previous chunk stopped
    reg = nir.OrderRegistry()
    first = nir.unique_orders(np.zeros(600, np.int64), reg)
    second = nir.unique_orders(np.zeros(399, np.int64), reg)
    assert len(set(first) | set(second)) == 999
    with pytest.raises(PipelineError):
        nir.unique_orders(np.zeros(1, np.int64), reg)


def test_extract_keys_valid_except_counted_mistypes(dataset):
    out, meta = dataset
    counts = meta["counts"]
    c_nir = [r[CAF_COLUMNS.index("nir")] for r in caf(out)[1:] if len(r) > 2]
    invalid_caf = [v for v in c_nir if v and not nir.key_is_valid(v)]
    assert len(invalid_caf) == counts["nir_errone_caf"] > 0
    p_rows = cpam(out)[1:]
    ben = [r[CPAM_COLUMNS.index("nir_beneficiaire")] for r in p_rows]
    invalid_cpam = [v for v in ben if v and not nir.key_is_valid(v)]
    assert len(invalid_cpam) == counts["nir_errone_cpam"] > 0
    # all the realities of the NIR appear: provisional numbers, born abroad
    assert any(v[0] in "78" for v in c_nir if v)
    assert any(v[5:7] == "99" for v in c_nir if v)


def test_clean_dataset_has_only_valid_keys(clean):
    out, meta = clean
    assert meta["counts"]["nir_errone_caf"] == 0
    for r in caf(out)[1:]:
        v = r[CAF_COLUMNS.index("nir")]
        assert v == "" or nir.key_is_valid(v)
    for r in cpam(out)[1:]:
        for v in r[:2]:
            assert v == "" or nir.key_is_valid(v)
