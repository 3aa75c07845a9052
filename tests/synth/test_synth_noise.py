"""Noise: each perturbation does what it says, on the rows it says, at the rate it says."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pipeline.synth import nir, noise


@pytest.fixture
def always(monkeypatch):
    monkeypatch.setattr(noise, "RATES", dict.fromkeys(noise.RATES, 1.0))
    return noise.Noiser(np.random.default_rng(1), 1.0)


def test_typo_is_one_small_edit(always):
    names = ["DUPONT", "MARTIN", "LEFÈVRE", "NGUYEN", "DE LA FONTAINE"] * 40
    df = always.typo(pl.DataFrame({"nom": names}), "nom", "typo_nom")
    changed = 0
    for a, b in zip(names, df["nom"], strict=True):
        assert abs(len(a) - len(b)) <= 1
        changed += a != b
    assert changed > 0.8 * len(names)  # a substitution may redraw the same letter
    assert always.counts["typo_nom"] == len(names)


def test_swap_and_unknown_day(always):
    df = pl.DataFrame({"bd": [3, 25, 7, 0], "bm": [11, 4, 7, 5], "abroad": [False] * 4},
                      schema={"bd": pl.Int8, "bm": pl.Int8, "abroad": pl.Boolean})
    out = always.swap_day_month(df)
    assert out["bd"].to_list() == [11, 25, 7, 0] and out["bm"].to_list() == [3, 4, 7, 5]
    assert always.unknown_day(df.with_columns(abroad=pl.lit(True)))["bd"].to_list() == [0] * 4


def test_mistyped_nir_has_a_bad_key_in_both_columns_of_an_adult(always):
    good = "255081416802538"
    df = pl.DataFrame({"ben": [good, "185052A00412356", None],
                       "od": [good, "285117511511142", "185052A00412356"]})
    out, mask = always.mistype_nir(df, ["ben", "od"])
    assert mask.tolist() == [True, True, False]
    assert not nir.key_is_valid(out["ben"][0]) and out["ben"][0] == out["od"][0]
    assert out["ben"][0][:7] == good[:7]  # sex, birth year/month, département kept
    assert not nir.key_is_valid(out["ben"][1])
    assert out["od"][1] == "285117511511142"  # a child's parent NIR is left alone
    assert out["od"][2] == "185052A00412356"


def test_accents_rotation_usage_particle(always):
    df = pl.DataFrame({"prenoms": ["Hélène Marie", "Zoé"], "nom_naissance": ["A", "B"],
                       "nom_usage": ["DUPONT", None], "nom": ["LE GALL", "DE LA ROCHE"]})
    assert always.accents(df, ["prenoms"])["prenoms"].to_list() == ["Helene Marie", "Zoe"]
    assert always.rotate_given(df, "prenoms")["prenoms"].to_list() == ["Marie Hélène", "Zoé"]
    u = always.usage_as_birth_name(df)
    assert u["nom_naissance"].to_list() == ["DUPONT", "B"] and u["nom_usage"].null_count() == 2
    assert always.glue_particle(df, "nom")["nom"].to_list() == ["LEGALL", "DELAROCHE"]


def test_rates_scale_with_noise():
    n = 200_000
    eligible = np.ones(n, dtype=bool)
    one = len(noise.Noiser(np.random.default_rng(0), 1.0).pick("typo_nom", eligible)) / n
    three = len(noise.Noiser(np.random.default_rng(0), 3.0).pick("typo_nom", eligible)) / n
    zero = len(noise.Noiser(np.random.default_rng(0), 0.0).pick("typo_nom", eligible))
    assert one == pytest.approx(0.015, rel=0.1)
    assert three == pytest.approx(0.045, rel=0.1)
    assert zero == 0


def test_dataset_rates_near_targets(dataset):
    _, meta = dataset
    c = meta["counts"]
    rows = c["caf_rows"]
    assert 0.008 < c["noise_caf"]["typo_nom"] / rows < 0.025
    assert 0.005 < c["noise_caf"]["jour_mois_inverses"] / rows < 0.02
    assert 0.001 < c["noise_caf"]["jour_inconnu_00"] / rows < 0.008
    assert 0.001 < c["nir_errone_caf"] / rows < 0.01
    assert 0.0005 < sum(c["malformed_caf"].values()) / rows < 0.005
