"""The central operator's attacks, proven on the v1 tokens of the sample, then judging v2.

On the v1 tokens (tokens_v1.yaml, kept as the control) the attacks must FIND the leaks (12
month classes, 31 day classes, one class per birth year, the birth year of minors named, names
recovered within the year classes); on the same export with one random token per row and column
they must find nothing beyond the prior. If an attack breaks (no classes, no names), these tests
fail. The same attacks then judge the version 2 export (tokens.yaml, composite match-keys)
against the leakage targets: no token column groups more than 1 % of rows into shared-value
classes (beyond the near-duplicate rate), birth year recovered for no more than the prior + 2
points, full date < 1 %, names < 1 % within any strata.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from helpers_pseudonymise import KEY

from pipeline.agency.ingest.api import ingest
from pipeline.agency.pseudonymise.attacks import class_attack, cross_export_attack
from pipeline.agency.pseudonymise.attacks.clusters import components, family
from pipeline.agency.pseudonymise.core import Materials, build, pseudonymise
from pipeline.agency.pseudonymise.leakage import agency_truth, frequency_leakage_frame
from pipeline.agency.pseudonymise.tokens import V1_CATALOGUE, load_catalogue
from pipeline.central.facts import leakage_facts
from pipeline.shared.attributes import add_attributes

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "raw"


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> dict:
    """agency -> the folder holding the committed sample extract, ingested."""
    out = {}
    for agency in ("caf", "cpam"):
        work = tmp_path_factory.mktemp(agency)
        ingest(agency, SAMPLE / f"{agency}_extract.csv", work)
        out[agency] = work
    return out


def _v1_age_fields(ingested: pl.DataFrame, handles: pl.DataFrame, agency: str) -> pl.DataFrame:
    """mineur and rang_foyer (CAF), role and sex, as the v1 export sent them (features at source
    and contract 3 no longer do)."""
    cols = ["mineur", "rang_foyer"] if agency == "caf" else []
    v1 = add_attributes(ingested, agency, None).select("line", *cols, "role", "sexe")
    return handles.select("handle", "line").join(v1, on="line").drop("line")


def _tokenised(ingested: dict, catalogue, *, v1_ages: bool = False) -> dict:
    out = {}
    for agency, work in ingested.items():
        frame = pl.read_parquet(work / "ingested.parquet")
        export, handles, _ = build(frame, agency, KEY, seed=3, catalogue=catalogue)
        if v1_ages:  # the v1 export also carried the minor flag and ranks, role and sex
            export = export.join(_v1_age_fields(frame, handles, agency), on="handle", how="left")
        out[agency] = (export, agency_truth(frame, handles, agency))
        out[f"{agency}_work"] = work
    return out


@pytest.fixture(scope="module")
def sample(ingested) -> dict:
    """agency -> (export, truth): the sample tokenised with the v1 control catalogue;
    <agency>_work -> the folder holding its ingested.parquet."""
    return _tokenised(ingested, load_catalogue(V1_CATALOGUE), v1_ages=True)


def test_features_export_names_no_birth_year(ingested) -> None:
    """Even with the v1 tokens' year classes, an export without the minor flag and the ranks
    (features at source) leaves the classes anonymous: the attack that names 44 % of v1 rows
    names none."""
    v1_features = _tokenised(ingested, load_catalogue(V1_CATALOGUE))
    export, truth = v1_features["caf"]
    assert not {"mineur", "rang_foyer"} & set(export.columns)
    res, _ = class_attack(export.join(truth, on="handle"))
    assert res["annee"]["classes_multiples"] >= 60
    assert res["annee"]["part_retrouvee"] == 0.0


@pytest.fixture(scope="module")
def sample_v2(ingested) -> dict:
    """The same, with the current (version 2) catalogue."""
    return _tokenised(ingested, None)


def _randomised(export: pl.DataFrame) -> pl.DataFrame:
    """Control: every token cell replaced by a fresh random value (nulls kept)."""
    rng = np.random.default_rng(0)
    cols = [c for c in export.columns if c.startswith("tok_")]
    fresh = pl.Series(rng.integers(0, 2**63, export.height * len(cols))).cast(pl.String)
    return export.with_columns(
        pl.when(pl.col(c).is_not_null()).then(fresh.slice(k * export.height, export.height))
        .alias(c) for k, c in enumerate(cols))


def test_components_join_rows_sharing_any_value() -> None:
    frame = pl.DataFrame({"a": ["x", "x", None, "y", "z", None],
                          "b": [None, "p", "p", "q", None, None]})
    labels = components(frame, ["a", "b"]).to_list()
    assert labels == [0, 0, 0, 3, 4, 5]


def test_families_follow_the_catalogue() -> None:
    cols = ["tok_dob_ym", "tok_dob_yd", "tok_dob_md", "tok_nom_a", "tok_nir", "tok_sexe"]
    assert family("annee", cols) == ["tok_nom_a", "tok_dob_ym", "tok_dob_yd"]
    assert family("mois", cols) == ["tok_dob_ym", "tok_dob_md"]
    assert family("jour", cols) == ["tok_dob_yd", "tok_dob_md"]


def test_v1_classes_rebuild_month_day_and_year(sample) -> None:
    export, truth = sample["caf"]
    res, _ = class_attack(export.join(truth, on="handle"))
    assert res["mois"]["classes_multiples"] == 12
    assert res["jour"]["classes_multiples"] == 31
    assert res["mois"]["part_dans_la_classe_de_sa_valeur"] > 0.99
    assert res["annee"]["part_dans_la_classe_de_sa_valeur"] > 0.98
    assert res["annee"]["classes_multiples"] >= 60
    # the year-salted name tokens alone still gather most rows into single-year classes
    assert res["annee_par_noms_seuls"]["part_lignes_en_classes_multiples"] > 0.5
    # one partial-date column alone is already a partition into few large classes
    part = res["partition_par_colonne"]
    assert part["tok_dob_md"]["part_lignes_en_classes_multiples"] > 0.95
    assert part["tok_nir"]["classes_multiples"] == 0


def test_v1_year_named_from_minor_flag_and_ranks(sample) -> None:
    export, truth = sample["caf"]
    res, _ = class_attack(export.join(truth, on="handle"))
    year = res["annee"]
    assert year["part_retrouvee"] > 0.35           # issue: 44 % of rows
    assert year["part_fausse"] < 0.005              # and none (or almost none) wrong
    assert year["a_priori"] < 0.15
    assert year["gain_sur_a_priori"] > 0.25
    # January to March: month lengths, the minor flag of the anchor year, one month per class
    assert res["mois"]["part_retrouvee"] > 0.2      # issue: a quarter of rows
    assert res["mois"]["part_fausse"] < 0.005
    assert res["jour"]["part_retrouvee"] > 0.1      # 30, 31 and the days paired with named months
    assert res["date_complete"]["part_retrouvee"] > 2 * res["date_complete"]["a_priori"]
    assert res["date_complete"]["part_fausse"] < 0.005


def test_cpam_alone_cannot_name_years_but_both_exports_can(sample) -> None:
    export, truth = sample["cpam"]
    alone, _ = class_attack(export.join(truth, on="handle"))
    assert alone["annee"]["classes_multiples"] >= 60  # classes, but no minor flag to name them
    assert alone["annee"]["part_retrouvee"] == 0.0
    assert alone["mois"]["part_retrouvee"] > 0.05  # February needs no minor flag
    both = cross_export_attack({a: sample[a][0] for a in ("caf", "cpam")},
                               {a: sample[a][1] for a in ("caf", "cpam")})
    assert both["par_organisme"]["cpam"]["annee"]["part_retrouvee"] > 0.3
    assert both["par_organisme"]["cpam"]["annee"]["part_fausse"] < 0.005


def test_v1_names_recovered_within_year_classes(sample) -> None:
    export, truth = sample["caf"]
    res = frequency_leakage_frame(export, truth, naive_control=False)
    within = res["classes_jetons"]["attaque_rang_par_classe"]
    exported_strata = res["attaque_rang"]["tok_prenom_phon_a"]["oracle_par_strate_exportee"]
    assert exported_strata < 0.01
    assert within["tok_prenom_phon_a"]["oracle_par_classe_annee_sexe"] > 0.1
    assert within["tok_prenom_a"]["table_publique_par_annee_sexe"] > 0.01
    assert res["pire_part_retrouvee"] > 0.1 and res["objectif_sous_1pct"] is False


def test_control_random_tokens_give_nothing_beyond_the_prior(sample) -> None:
    export, truth = sample["caf"]
    res = frequency_leakage_frame(_randomised(export), truth, naive_control=False)
    classes = res["classes_jetons"]
    for part in ("annee", "mois", "jour"):
        assert classes[part]["classes_multiples"] == 0, part
        assert classes[part]["part_retrouvee"] == 0.0, part
        assert classes[part]["attaque_ou_a_priori"] == classes[part]["a_priori"], part
    assert classes["annee_par_noms_seuls"]["classes_multiples"] == 0
    for figures in classes["attaque_rang_par_classe"].values():
        assert max(v for v in figures.values() if v is not None) < 0.01


def test_leakage_file_and_report_facts_carry_the_class_attack(sample, tmp_path) -> None:
    """Every export (version 2 now) writes the class attack into leakage.json and the report."""
    work = sample["caf_work"]
    res = pseudonymise("caf", work, work / "keys", tmp_path / "c.yaml", tmp_path / "export",
                       seed=1, materials=Materials(KEY, "x", "test", None, None, True),
                       sign=False)
    leak = json.loads(res.leakage_file.read_text("utf-8"))
    classes = leak["frequence"]["classes_jetons"]
    assert classes["annee"]["colonnes"]  # the v2 keys holding a date are attacked
    assert classes["annee"]["gain_sur_a_priori"] <= 0.02
    assert classes["attaque_rang_par_classe"]  # and the keys holding a name
    facts = leakage_facts("caf", {"ok": True, "findings": []}, leak)
    assert facts["details"]["classes de jetons · année de naissance retrouvée"] == \
        classes["annee"]["part_retrouvee"]
    assert facts["frequency_leakage"] == leak["frequence"]["pire_part_retrouvee"] < 0.01


# ------------------------------------------------------------------ version 2 judged

NEAR_DUPLICATE_MARGIN = 0.01  # share of rows a column may put in shared-value classes, beyond
# the rate of rows sharing surname + full birth date (the same person twice, twins, namesakes
# born the same day): the narrowest key (tok_nomseul_dob) is that very pair of components


# The one key without a date (names + commune, for a birth date blank on one side): its classes
# are the namesakes of a commune, held to the rate of rows sharing those names in clear (the
# synthetic name lists make it ~7 % on the sample); it joins no date family (the class attack
# below and the name attacks of test_v2_meets_the_leakage_targets judge what it gives away).
NAMES_ONLY_KEYS = {"tok_noms_commune": ("nom", "prenom1", "code_commune")}


def _near_duplicate_rate(ingested: dict, agency: str,
                         components: tuple[str, ...] = ("nom", "dob")) -> float:
    from pipeline.agency.pseudonymise.prepare import prepare_components

    d = prepare_components(pl.read_parquet(ingested[agency] / "ingested.parquet"), agency)
    g = d.drop_nulls(list(components)).group_by(components).len()
    return int(g.filter(pl.col("len") > 1)["len"].sum()) / d.height


@pytest.mark.parametrize("agency", ["caf", "cpam"])
def test_v2_no_token_column_partitions_the_export(sample_v2, ingested, agency) -> None:
    export, truth = sample_v2[agency]
    res, _ = class_attack(export.join(truth, on="handle"))
    limit = _near_duplicate_rate(ingested, agency) + NEAR_DUPLICATE_MARGIN
    for col, part in res["partition_par_colonne"].items():
        bound = (_near_duplicate_rate(ingested, agency, NAMES_ONLY_KEYS[col]) + 0.001
                 if col in NAMES_ONLY_KEYS else limit)
        assert part["part_lignes_en_classes_multiples"] <= bound, col
    assert not set(NAMES_ONLY_KEYS) & set(family("annee", export.columns))
    for part in ("annee", "mois", "jour"):
        # the union of every date-holding key: twins (parent NIR + date + sex) and namesakes,
        # in classes of a few rows, never a partition by year, month or day
        assert res[part]["part_lignes_en_classes_multiples"] <= 2 * limit, part
        assert res[part]["plus_grande_classe"] * export.height <= 4, part
        assert res[part]["part_dans_la_classe_de_sa_valeur"] < 0.05, part
    # names + year keys (names + commune + year) draw namesake pairs, not year classes
    assert res["annee_par_noms_seuls"]["part_lignes_en_classes_multiples"] <= limit


def test_v2_meets_the_leakage_targets(sample_v2) -> None:
    export, truth = sample_v2["caf"]
    res = frequency_leakage_frame(export, truth, naive_control=False)
    classes = res["classes_jetons"]
    year = classes["annee"]
    assert year["attaque_ou_a_priori"] <= year["a_priori"] + 0.02
    assert classes["date_complete"]["part_retrouvee"] < 0.01
    assert classes["date_complete"]["attaque_ou_a_priori"] < 0.01
    assert res["pire_part_retrouvee"] < 0.01 and res["objectif_sous_1pct"] is True
    for figures in classes["attaque_rang_par_classe"].values():
        assert max(v for v in figures.values() if v is not None) < 0.01


def test_v2_both_exports_together_name_no_year(sample_v2) -> None:
    both = cross_export_attack({a: sample_v2[a][0] for a in ("caf", "cpam")},
                               {a: sample_v2[a][1] for a in ("caf", "cpam")})
    for agency in ("caf", "cpam"):
        year = both["par_organisme"][agency]["annee"]
        assert year["attaque_ou_a_priori"] <= year["a_priori"] + 0.02, agency
    assert both["date_complete"]["part_retrouvee"] < 0.01
