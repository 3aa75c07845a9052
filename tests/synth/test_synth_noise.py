"""Noise: each perturbation does what it says, on the rows it says, at the rate it says."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from conftest import SEED

from pipeline.common.errors import PipelineError
from pipeline.synth import generate, nir, noise


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


# ---------------------------------------------------------------- `realiste` profile


@pytest.fixture
def harsh(monkeypatch):
    monkeypatch.setattr(noise, "REALISTE", dict.fromkeys(noise.REALISTE, 1.0))
    monkeypatch.setitem(noise.PROFILES, "realiste", noise.REALISTE)
    return noise.Noiser(np.random.default_rng(3), 1.0, "realiste")


DATES = pl.DataFrame({"by": [1980, 1975, 2001, None], "bm": [5, 12, 1, None],
                      "bd": [17, 3, 0, None]},
                     schema={"by": pl.Int16, "bm": pl.Int8, "bd": pl.Int8})


def test_blank_and_wrong_year(harsh):
    assert harsh.blank_date(DATES).null_count().row(0) == (4, 4, 4)
    out = harsh.wrong_year(DATES)
    assert [abs(a - b) for a, b in zip(out["by"][:3], DATES["by"][:3], strict=True)] == [1] * 3
    assert out["bm"].to_list() == DATES["bm"].to_list()


def test_mistyped_date_changes_one_valid_part(harsh):
    df = pl.concat([DATES[:2]] * 200)
    out = harsh.mistype_date(df)
    diff = (out.select((pl.col(c) != df[c]).cast(pl.Int8) for c in ("by", "bm", "bd"))
            .sum_horizontal())
    assert diff.to_list() == [1] * df.height  # exactly one part changed on every row
    assert out["bd"].is_between(1, 28).all() and out["bm"].is_between(1, 12).all()
    assert (out["by"] // 10 == df["by"] // 10).all()  # only the last year digit
    assert harsh.counts["date_chiffre_errone"] == df.height
    assert harsh.mistype_date(DATES[2:]).equals(DATES[2:])  # day 00 / blank: left alone


def test_swapped_names_and_cut_compound(harsh):
    df = pl.DataFrame({"nom": ["MARTIN-DUPONT", "LEROY"], "prenoms": ["Anne Marie", "Luc"]})
    out = harsh.swap_names(df, "nom", "prenoms")
    assert out.rows() == [("ANNE", "MARTIN-DUPONT"), ("LUC", "LEROY")]
    assert harsh.cut_compound(df, "nom")["nom"].to_list() == ["MARTIN", "LEROY"]


def test_mistyped_key_makes_an_invalid_nir_kept_in_both_columns(harsh):
    good = "255081416802538"
    df = pl.DataFrame({"ben": [good, None], "od": [good, "185052A00412356"]})
    out = harsh.mistype_nir_key(df, ["ben", "od"])
    assert out["ben"][0][:13] == good[:13] and not nir.key_is_valid(out["ben"][0])
    assert out["od"][0] == out["ben"][0] and out["od"][1] == "185052A00412356"


def test_standard_profile_draws_nothing_extra():
    z = noise.Noiser(np.random.default_rng(0), 5.0)
    df = DATES.with_columns(nom=pl.lit("A-B"), prenom=pl.lit("C"), nir=pl.lit("x"))
    assert z.realistic(df, "nom", "prenom", ["nir"]).equals(df) and z.counts == {}
    with pytest.raises(PipelineError, match="profil inconnu"):
        noise.Noiser(np.random.default_rng(0), 1.0, "brutal")


def test_realiste_dataset_carries_the_new_errors(tmp_path, dataset):
    out = tmp_path / "real"
    generate(300, SEED, 1.0, out, noise_profile="realiste")
    meta = json.loads((out / "truth" / "meta.json").read_text(encoding="utf-8"))
    assert meta["noise_profile"] == "realiste" and "noise_profile" not in dataset[1]
    for kind in ("date_vide", "annee_erronee", "noms_inverses", "nir_cle_erronee"):
        assert meta["counts"]["noise_caf"][kind] > 0 and meta["counts"]["noise_cpam"][kind] > 0
    assert "date_vide" not in dataset[1]["counts"]["noise_caf"]
    raw = pl.read_csv(out / "raw" / "caf_extract.csv", separator=";", infer_schema_length=0)
    assert raw["date_naissance"].null_count() >= meta["counts"]["noise_caf"]["date_vide"]
