"""The residue stage of the central linkage (staged exchange): requests, linking by Bloom
filters, refusals, determinism. Exports come from tests/match's token fixtures, residue files
from the real encoder (pipeline/shared/bloom.py) under a test key."""

from __future__ import annotations

import polars as pl
import pytest
from residue_fixtures import (
    COMMUNE,
    link_pairs,
    population,
    residue_files,
    write_exports,
)

from pipeline.central.match import link
from pipeline.central.match.residue import request_path
from pipeline.common.errors import InputError
from pipeline.shared.linkage_model import load_config

RESIDUE_PASS = load_config().residue_pass.name
N, HARD, STRANGERS = 150, 40, 30

# Hand-made cases added to the population (no exact key can link them).
EXTRA_CAF = [
    # birth date replaced at the CPAM and a typo in the first name: the same person
    dict(id="c_rep", foyer="f_rep", sexe=2, dob="1975-03-14", nom="DUPONTELLIER",
         prenom1="GERALDINE", code_commune=COMMUNE),
    # a namesake: same names, another birth date and the other sex, no partner
    dict(id="c_hom", foyer="f_hom", sexe=1, dob="1990-01-17", nom="VALDORGUIPER",
         prenom1="CLAUDE", code_commune=COMMUNE),
]
EXTRA_CPAM = [
    dict(id="r_rep", foyer="g_rep", sexe=2, dob="1981-11-02", nom="DUPONTELLIER",
         prenom1="GERALDNE", code_commune=COMMUNE),
    dict(id="r_hom", foyer="g_hom", sexe=2, dob="1956-07-29", nom="VALDORGUIPER",
         prenom1="CLAUDE", code_commune=COMMUNE),
]


def _run(tmp, caf, cpam, *, residue: bool, opposed=frozenset(), out="out"):
    a, b = write_exports(tmp / "exports", caf, cpam, opposed)
    stage1 = link(a, b, tmp / f"{out}_etape1")
    if not residue:
        return stage1
    files = residue_files(tmp, caf, cpam, tmp / f"{out}_etape1")
    return link(a, b, tmp / out, residue=files)


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("residue")
    caf, cpam, pairs = population(N, HARD, seed=11, strangers=STRANGERS)
    caf, cpam = caf + EXTRA_CAF, cpam + EXTRA_CPAM
    pairs = [*pairs, ("c_rep", "r_rep")]
    stage1 = _run(tmp, caf, cpam, residue=False)
    final = _run(tmp, caf, cpam, residue=True)
    return dict(tmp=tmp, caf=caf, cpam=cpam, pairs=pairs, stage1=stage1, final=final)


def test_replaced_date_and_typo_linked_by_residue(case):
    got = link_pairs(case["final"].links, case["caf"], case["cpam"])
    assert got.get(("c_rep", "r_rep")) == RESIDUE_PASS
    before = link_pairs(case["stage1"].links, case["caf"], case["cpam"])
    assert ("c_rep", "r_rep") not in before  # no exact key could link it


def test_namesake_other_date_and_sex_not_linked(case):
    got = link_pairs(case["final"].links, case["caf"], case["cpam"])
    assert not [k for k in got if k[0] == "c_hom" or k[1] == "r_hom"]
    # the filters alone would have linked it: the namesake guard kept it out
    guard = case["final"].stats["residue"]["namesake_guard"]
    assert guard["applied"] and guard["kept_from_linking"] >= 1


def test_residue_raises_recall_without_false_links(case):
    truth = set(case["pairs"])
    before = set(link_pairs(case["stage1"].links, case["caf"], case["cpam"]))
    after = link_pairs(case["final"].links, case["caf"], case["cpam"])
    residue_links = {k for k, p in after.items() if p == RESIDUE_PASS}
    assert len(before & truth) <= N - HARD + 1  # the hard pairs are out of the keys' reach
    # whole birth date replaced and a typo: similarities near residue.link_min_similarity;
    # 24 of 40 linked at residue.link_weight 1.5 (at least 32 with the former calibration, whose
    # prior let strangers link on a territory), the rest in review
    assert len(residue_links & truth) >= 0.5 * HARD
    assert len(residue_links - truth) <= 1
    stats = case["final"].stats["residue"]
    assert stats["linked"] == len(residue_links)
    assert stats["candidate_pairs"]["total"] >= stats["linked"]


def test_explanations_cover_residue_links(case):
    ex = pl.read_parquet(case["final"].explanations).filter(pl.col("pass") == RESIDUE_PASS)
    assert ex.height == case["final"].stats["residue"]["linked"]
    parts = [f"{name}_weight" for name in ("bloom", "foyer_contexte", "nir")]
    total = ex["prior_weight"] + sum(ex[c] for c in parts)
    assert (total - ex["match_weight"]).abs().max() < 1e-9
    assert ex["bloom_similarity"].min() > 0.5


def test_determinism(case, tmp_path):
    again = _run(tmp_path, case["caf"], case["cpam"], residue=True)
    for name in ("links.parquet", "link_explanations.parquet", "clerical_review.parquet",
                 "link_stats.json"):
        assert (again.links.parent / name).read_bytes() == (
            case["final"].links.parent / name).read_bytes(), name


def test_requests_are_the_unlinked_non_opposed_handles(tmp_path):
    caf, cpam, _ = population(40, 10, seed=5, strangers=5)
    opposed = {"cs0", "rs1", "c3"}  # c3: one of the hard pairs, opposed at the CAF
    res = _run(tmp_path, caf, cpam, residue=False, opposed=opposed)
    links = pl.read_parquet(res.links)
    for agency, persons, col in (("caf", caf, "caf_handle"), ("cpam", cpam, "cpam_handle")):
        from residue_fixtures import handle_of

        linked = set(links[col].to_list())
        expected = sorted(handle_of(p["id"], agency) for p in persons
                          if p["id"] not in opposed and handle_of(p["id"], agency) not in linked)
        text = request_path(tmp_path / "out_etape1", agency).read_text(encoding="utf-8")
        lines = text.splitlines()
        assert lines[0] == "handle"
        assert lines[1:] == expected
        assert len(expected) >= 10  # the hard pairs and the strangers are asked for


def test_unrequested_handle_refused(case, tmp_path):
    caf, cpam = case["caf"], case["cpam"]
    a, b = write_exports(tmp_path / "exports", caf, cpam)
    files = residue_files(case["tmp"], caf, cpam, case["tmp"] / "out_etape1")
    frame = pl.read_parquet(files["caf"])
    linked = pl.read_parquet(case["stage1"].links)["caf_handle"][0]
    bad = pl.concat([frame, frame.head(1).with_columns(pl.lit(linked).alias("handle"))])
    path = tmp_path / "bad" / "residu.parquet"
    path.parent.mkdir()
    bad.write_parquet(path)
    with pytest.raises(InputError, match="pas été demandé"):
        link(a, b, tmp_path / "out", residue={"caf": path, "cpam": files["cpam"]})


def test_residue_absent_keeps_stage_one_outputs(case):
    """Without `residue`, the outputs are stage 1's (the requests are written beside them)."""
    links = pl.read_parquet(case["stage1"].links)
    assert RESIDUE_PASS not in set(links["pass"].to_list())
    assert request_path(case["stage1"].links.parent, "caf").is_file()
