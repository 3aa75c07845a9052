"""Deterministic passes, outputs and determinism of pipeline.central.match.link on tiny fixtures."""

from __future__ import annotations

import json

import polars as pl
import pytest
from match_fixtures import (
    config_with_passes,
    handle_of,
    noisy_population,
    truth_file,
    write_exports,
)

from pipeline.central.match import link
from pipeline.common.errors import InputError

DEM_NIR, CJT_NIR = "1780561169002", "2800361169001"

CAF = [
    dict(id="dem", foyer="f1", sexe=1, dob="1978-05-06", nom="MARTIN", prenom1="PAUL", nir=DEM_NIR),
    dict(id="cjt", foyer="f1", role="CJT", sexe=2, dob="1980-03-04", nom="DUPONT",
         nom_usage="MARTIN", prenom1="MARIE", nir=CJT_NIR),
    # child attached to the CJT (parent 2) at the CPAM
    dict(id="luc", foyer="f1", role="ENF", sexe=1, dob="2015-07-08", nom="MARTIN",
         prenom1="LUC", nir_parent1=DEM_NIR, nir_parent2=CJT_NIR),
    # same-sex twins
    dict(id="tom", foyer="f1", role="ENF", sexe=1, dob="2018-09-10", nom="MARTIN",
         prenom1="TOM", nir_parent1=DEM_NIR, nir_parent2=CJT_NIR),
    dict(id="leo", foyer="f1", role="ENF", sexe=1, dob="2018-09-10", nom="MARTIN",
         prenom1="LEO", nir_parent1=DEM_NIR, nir_parent2=CJT_NIR),
    # NIR conflict: same NIR token, different sex at the CPAM
    dict(id="eve", foyer="f2", sexe=2, dob="1991-01-02", nom="LEROY", prenom1="EVE",
         nir="2910161169005"),
    # no NIR: linked on name + usage name + birth date
    dict(id="ana", foyer="f3", sexe=2, dob="1985-11-23", nom="BERNARD", nom_usage="PETIT",
         prenom1="ANA"),
]
CPAM = [
    dict(id="DEM", sexe=1, dob="1978-05-06", nom="MARTIN", prenom1="PAUL", nir=DEM_NIR),
    dict(id="CJT", sexe=2, dob="1980-03-04", nom="MARTIN", prenom1="MARIE", nir=CJT_NIR),
    dict(id="LUC", role="ENFANT", sexe=1, dob="2015-07-08", nom="MARTIN", prenom1="LUC",
         nir_ouvrant_droit=CJT_NIR),
    dict(id="TOM", role="ENFANT", sexe=1, dob="2018-09-10", nom="MARTIN", prenom1="TOM",
         nir_ouvrant_droit=DEM_NIR),
    dict(id="LEO", role="ENFANT", sexe=1, dob="2018-09-10", nom="MARTIN", prenom1="LEO",
         nir_ouvrant_droit=DEM_NIR),
    dict(id="EVE", sexe=1, dob="1991-01-02", nom="DUBOIS", prenom1="JULES", nir="2910161169005"),
    dict(id="ANA", sexe=2, dob="1985-11-23", nom="PETIT", prenom1="ANA"),
]
EXPECTED = {("dem", "DEM", "nir"), ("cjt", "CJT", "nir"), ("luc", "LUC", "enfant"),
            ("tom", "TOM", "enfant"), ("leo", "LEO", "enfant"), ("ana", "ANA", "nom_dob")}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("passes")
    caf, cpam = write_exports(tmp, CAF, CPAM)
    truth = truth_file(tmp, [(a, b) for a, b, _ in EXPECTED])
    return tmp, caf, cpam, link(caf, cpam, tmp / "out", truth=truth, threads=2)


def _named(df: pl.DataFrame) -> set[tuple[str, str, str]]:
    caf = {handle_of(p["id"], "caf"): p["id"] for p in CAF}
    cpam = {handle_of(p["id"], "cpam"): p["id"] for p in CPAM}
    return {(caf[a], cpam[b], p) for a, b, p in
            df.select("caf_handle", "cpam_handle", "pass").iter_rows()}


def test_passes_link_the_expected_pairs(run):
    _, _, _, result = run
    links = pl.read_parquet(result.links)
    assert links.columns == ["caf_handle", "cpam_handle", "pass", "match_weight",
                             "match_probability"]
    assert _named(links) == EXPECTED


def test_nir_conflict_is_reported_not_linked(run):
    _, _, _, result = run
    stats = json.loads(result.stats_path.read_text())
    assert stats["conflicts"]["nir"] == 1
    named = _named(pl.read_parquet(result.links))
    assert not any(a == "eve" for a, _, _ in named)


def test_twins_are_separated_by_first_name(run):
    _, _, _, result = run
    _nir, enfant, *_ = json.loads(result.stats_path.read_text())["funnel"]["passes"]
    assert enfant["linked_by_tie_break"] == 2
    assert enfant["linked"] == 3


def test_quality_against_truth(run):
    _, _, _, result = run
    q = result.stats["quality"]
    assert q["precision"] == 1.0 and q["recall"] == 1.0


def test_one_to_one_and_explanations(run):
    _, _, _, result = run
    links = pl.read_parquet(result.links)
    assert links["caf_handle"].is_unique().all() and links["cpam_handle"].is_unique().all()
    expl = pl.read_parquet(result.explanations)
    weights = [c for c in expl.columns if c.endswith("_weight") and c != "match_weight"]
    assert {"prior_weight", "identite_weight", "identite_level", "nir_level"} <= set(expl.columns)
    total = expl.select("caf_handle", "cpam_handle", "match_weight",
                        pl.sum_horizontal(weights).alias("sum"))
    merged = links.join(total, on=["caf_handle", "cpam_handle"], suffix="_e")
    assert merged.height == links.height
    assert (merged["sum"] - merged["match_weight"]).abs().max() < 1e-9
    # the usage-name marriage case is explained as such
    ana = expl.filter(pl.col("caf_handle") == handle_of("ana", "caf"))
    assert ana["identite_level"].to_list() == ["usage"]


def test_rerun_is_byte_identical(run):
    tmp, caf, cpam, _result = run
    link(caf, cpam, tmp / "again", threads=1)
    for name in ("links.parquet", "link_explanations.parquet", "clerical_review.parquet"):
        assert (tmp / "out" / name).read_bytes() == (tmp / "again" / name).read_bytes(), name


def test_duplicate_handle_names_the_row(tmp_path):
    caf, cpam = write_exports(tmp_path, CAF[:2], CPAM[:2])
    df = pl.read_parquet(caf)
    pl.concat([df, df.head(1)]).write_parquet(caf)
    with pytest.raises(InputError) as err:
        link(caf, cpam, tmp_path / "out")
    assert err.value.line == 3 and err.value.column == "handle"
    assert not (tmp_path / "out" / "links.parquet").exists()


def test_missing_required_column(tmp_path):
    caf, cpam = write_exports(tmp_path, CAF[:2], CPAM[:2])
    pl.read_parquet(cpam).drop("tok_nir").write_parquet(cpam)
    with pytest.raises(InputError) as err:
        link(caf, cpam, tmp_path / "out")
    assert err.value.column == "tok_nir"


def test_an_empty_export_links_nothing_and_says_so(tmp_path):
    caf, cpam = write_exports(tmp_path, CAF, CPAM[:1])
    pl.read_parquet(cpam).head(0).write_parquet(cpam)
    result = link(caf, cpam, tmp_path / "out")
    assert result.n_links == 0
    assert pl.read_parquet(result.links).height == 0
    assert result.stats["funnel"]["caf_unlinked"] == len(CAF)


# ---------------------------------------------------------------- certified NIR vs declared date

NIR_A, NIR_B, NIR_C = "1700561169011", "2850361169022", "1920761169033"
CAF_DATE = [
    # certified both sides, same sex, birth year mistyped at the CPAM: trusted
    dict(id="yan", sexe=1, dob="1970-05-12", nom="KERMAREC", prenom1="YANN", nir=NIR_A,
         statut="certifie"),
    # certified both sides, date differs AND sex differs: still a conflict
    dict(id="ida", sexe=2, dob="1985-03-02", nom="MOREL", prenom1="IDA", nir=NIR_B,
         statut="certifie"),
    # provisional NIR at the CAF, date differs: not trusted
    dict(id="noe", sexe=1, dob="1992-07-20", nom="SIMON", prenom1="NOE", nir=NIR_C,
         statut="provisoire"),
]
CPAM_DATE = [
    dict(id="YAN", sexe=1, dob="1971-05-12", nom="KERMAREC", prenom1="YANN", nir=NIR_A,
         statut="certifie"),
    dict(id="IDA", sexe=1, dob="1985-04-02", nom="GIRARD", prenom1="HUGO", nir=NIR_B,
         statut="certifie"),
    dict(id="NOE", sexe=1, dob="1992-08-21", nom="ROUX", prenom1="THEO", nir=NIR_C,
         statut="certifie"),
]


def _with_status(path, persons, agency):
    """Add the export's nir_statut column (match_fixtures leaves it out)."""
    status = {handle_of(p["id"], agency): p["statut"] for p in persons}
    df = pl.read_parquet(path)
    df.with_columns(nir_statut=pl.col("handle").replace_strict(status)).write_parquet(path)


def test_certified_nir_wins_over_a_mistyped_date_unless_sex_disagrees(tmp_path):
    caf, cpam = write_exports(tmp_path, CAF_DATE, CPAM_DATE)
    _with_status(caf, CAF_DATE, "caf")
    _with_status(cpam, CPAM_DATE, "cpam")
    res = link(caf, cpam, tmp_path / "out", threads=2)
    caf_ids = {handle_of(p["id"], "caf"): p["id"] for p in CAF_DATE}
    cpam_ids = {handle_of(p["id"], "cpam"): p["id"] for p in CPAM_DATE}
    links = {(caf_ids[a], cpam_ids[b], p) for a, b, p in pl.read_parquet(res.links)
             .select("caf_handle", "cpam_handle", "pass").iter_rows()}
    assert ("yan", "YAN", "nir") in links
    assert not any(a in ("ida", "noe") and p == "nir" for a, _, p in links)
    stats = json.loads(res.stats_path.read_text())
    assert stats["conflicts"]["nir"] == 2


# ---------------------------------------------------------------- household pass

DAD = "1750461169044"
CAF_FOYER = [
    dict(id="dad", foyer="h1", sexe=1, dob="1975-04-03", nom="LEGRAND", prenom1="MARC", nir=DAD),
    # birth day mistyped at the CPAM: the child token differs, the household finds her
    dict(id="zoe", foyer="h1", role="ENF", sexe=2, dob="2012-06-14", nom="LEGRAND",
         prenom1="ZOE", nir_parent1=DAD),
    # birth year mistyped at the CPAM and first name typed differently: month + day still agree
    dict(id="ali", foyer="h1", role="ENF", sexe=1, dob="2014-09-23", nom="LEGRAND",
         prenom1="ALI", nir_parent1=DAD),
    # a sister at the CAF, a brother at the CPAM: never linked to each other
    dict(id="lou", foyer="h1", role="ENF", sexe=2, dob="2016-01-30", nom="LEGRAND",
         prenom1="LOU", nir_parent1=DAD),
]
CPAM_FOYER = [
    dict(id="DAD", foyer="H1", sexe=1, dob="1975-04-03", nom="LEGRAND", prenom1="MARC", nir=DAD),
    dict(id="ZOE", foyer="H1", role="ENFANT", sexe=2, dob="2012-06-15", nom="LEGRAND",
         prenom1="ZOE", nir_ouvrant_droit=DAD),
    dict(id="ALI", foyer="H1", role="ENFANT", sexe=1, dob="2015-09-23", nom="LEGRAND",
         prenom1="ALY", nir_ouvrant_droit=DAD),
    dict(id="MAX", foyer="H1", role="ENFANT", sexe=1, dob="2016-01-30", nom="LEGRAND",
         prenom1="MAX", nir_ouvrant_droit=DAD),
]


def test_household_pass_links_members_with_one_error_in_a_linked_household(tmp_path):
    caf, cpam = write_exports(tmp_path, CAF_FOYER, CPAM_FOYER)
    res = link(caf, cpam, tmp_path / "out", threads=2)
    caf_ids = {handle_of(p["id"], "caf"): p["id"] for p in CAF_FOYER}
    cpam_ids = {handle_of(p["id"], "cpam"): p["id"] for p in CPAM_FOYER}
    links = {(caf_ids[a], cpam_ids[b], p) for a, b, p in pl.read_parquet(res.links)
             .select("caf_handle", "cpam_handle", "pass").iter_rows()}
    # version 2: the parent NIR + sex + first name / month + day keys find them first
    assert {("dad", "DAD", "nir"), ("zoe", "ZOE", "enfant_date_erronee"),
            ("ali", "ALI", "enfant_date_erronee")} <= links
    assert not any(a == "lou" or b == "MAX" for a, b, _ in links)


# ---------------------------------------------------------------- NIR in the probabilistic model


def test_two_different_nirs_weigh_against_a_probabilistic_link(tmp_path):
    """Same first name, birth date, sex and commune, another surname and another valid NIR:
    two people, whom the name and date evidence alone would link."""
    caf, cpam, pairs = noisy_population(400, 11, nir_share=0.6)
    twin = dict(sexe=2, dob="1990-06-15", prenom1="CLAIRE", prenom2="ANNE", code_commune="61169")
    caf.append(dict(twin, id="imp_c", nom="FONTAINE", nir="2900661169901"))
    cpam.append(dict(twin, id="imp_r", nom="GIRARD", nir="2900661169902"))
    a, b = write_exports(tmp_path, caf, cpam)
    res = link(a, b, tmp_path / "out", truth=truth_file(tmp_path, pairs), threads=2,
               config=config_with_passes(tmp_path, ("nir", "nom_dob")))
    stats = json.loads(res.stats_path.read_text())
    nir = next(c for c in stats["model"]["comparisons"] if c["comparison"] == "nir")
    weights = {lv["level"]: lv["weight"] for lv in nir["levels"]}
    # v2 (composite keys): -2.4 measured; contract 3 (no sex or commune comparison left to
    # share the evidence): -1.0 measured; the residual's true pairs rarely carry two NIRs
    assert weights["exact"] > 5 and weights["else"] < -0.5
    links = pl.read_parquet(res.links)
    assert handle_of("imp_c", "caf") not in links["caf_handle"].to_list()
    assert stats["quality"]["precision"] == 1.0


def test_household_pass_links_a_blank_birth_date_only_when_unique(tmp_path):
    caf = [CAF_FOYER[0], dict(CAF_FOYER[1], dob=None),  # zoe: birth date left blank at the CAF
           dict(CAF_FOYER[3], id="lou")]
    # ZOE's first name also typed differently at the CPAM: no child key agrees, the household
    # pass alone can link her (date absent on one side, same sex, the only candidate)
    cpam = [CPAM_FOYER[0], dict(CPAM_FOYER[1], prenom1="ZOA"),
            dict(CPAM_FOYER[3], id="EMA", sexe=2, prenom1="EMMA", dob="2017-03-03")]  # ambiguous
    a, b = write_exports(tmp_path, caf, cpam)
    res = link(a, b, tmp_path / "out", threads=2)
    first = pl.read_parquet(res.links).filter(pl.col("pass") == "foyer")
    assert handle_of("zoe", "caf") not in first["caf_handle"].to_list()  # two girls: not unique
    stats = json.loads(res.stats_path.read_text())
    foyer = next(p for p in stats["funnel"]["passes"] if p["pass"] == "foyer")
    assert foyer["ambiguous_caf"] >= 1
    a, b = write_exports(tmp_path, caf[:2], cpam[:2])
    res = link(a, b, tmp_path / "out2", threads=2)
    links = pl.read_parquet(res.links)
    zoe = links.filter(pl.col("caf_handle") == handle_of("zoe", "caf"))
    assert zoe["cpam_handle"].to_list() == [handle_of("ZOE", "cpam")]
    assert zoe["pass"].to_list() == ["foyer"]


@pytest.mark.parametrize("name", ["nom_faute", "noms_inverses_faute", "prenom_faute"])
def test_keyed_candidates_are_the_pairs_of_one_join_per_equality(name):
    """The typo passes' one join on the values (pass_candidates_keyed.sql) gives exactly the
    candidate rows of one join per equality, united: on small value ranges with nulls, so that
    many columns collide across the equalities and within them."""
    import numpy as np

    from pipeline.central.engines import EngineSettings, open_engine
    from pipeline.central.match import passes
    from pipeline.shared.linkage_model import load_config

    p = next(q for q in load_config().passes if q.name == name)
    assert len(p.joins) >= passes.KEYED_MIN_JOINS
    rng = np.random.default_rng(11)

    def side(alias: str, n: int) -> pl.DataFrame:
        cols = {c: pl.Series(c, rng.integers(0, 6, n), dtype=pl.Int64)
                for c in sorted(passes._pass_columns(p, alias))}
        frame = pl.DataFrame({"id": np.arange(n, dtype=np.int64), **cols})
        return frame.with_columns(pl.when(pl.lit(rng.random(n)) < 0.3).then(None)
                                  .otherwise(pl.col(c)).alias(c) for c in cols)

    with open_engine(EngineSettings(name="duckdb", memory_limit="1GB")) as eng:
        left, right = eng.load_frame("l_in", side("l", 300)), eng.load_frame("r_in", side("r", 300))
        keyed = eng.collect(passes._candidates_sql(eng, p, left, right))
        joined = eng.collect(passes._joined_candidates_sql(eng, p, left, right))
    assert keyed.height > 100
    order = ["lid", "rid", "consistent", "tie"]
    assert keyed.sort(order).equals(joined.select(order).sort(order))
