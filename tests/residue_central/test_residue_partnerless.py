"""A residue made mostly of people who exist in one file only (the territory case: stage 1 links
nearly everyone, what is left is mostly partnerless) must not link strangers to each other.

Strangers share the commune and a few birth years and draw their names from one small stock
of syllables and first names: chance similarity between them is high. Enough of them that the
residue is blocked by LSH (more than residue.full_comparison_max_pairs pairs). A handful of
true pairs with a replaced birth date and a typo are there too (about 10 among 3.5M residue
pairs: too few for EM to find a class of true pairs, they are not linked either — the price of
the prior; on a territory's residue, 480 true pairs among 80k x 80k rows, they are)."""

from __future__ import annotations

import random

import pytest
from residue_fixtures import (
    COMMUNE,
    FIRST,
    config_with,
    link_pairs,
    residue_files,
    surname,
    typo,
    write_exports,
)

from pipeline.central.match import link
from pipeline.shared import bloom
from pipeline.shared.linkage_model import load_config

RESIDUE_PASS = load_config().residue_pass.name
STRANGERS, TRUE_PAIRS, HARD = 2000, 40, 12  # per side; > 3M residue pairs: LSH blocking


def _person(rnd: random.Random, pid: str, foyer: str) -> dict:
    return dict(id=pid, foyer=foyer, sexe=rnd.choice([1, 2]), nom=surname(rnd),
                prenom1=rnd.choice(FIRST), code_commune=COMMUNE,
                dob=f"{rnd.choice([1979, 1980, 1981])}-{rnd.randint(1, 12):02d}-"
                    f"{rnd.randint(1, 28):02d}")


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("partnerless")
    rnd = random.Random(41)
    caf, cpam, pairs = [], [], []
    for i in range(TRUE_PAIRS):
        c = _person(rnd, f"c{i}", f"f{i}")
        r = dict(c, id=f"r{i}", foyer=f"g{i}")
        if i < HARD:  # replaced birth day and month, a typo: out of every exact key's reach
            r["dob"] = c["dob"][:5] + f"{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
            r["nom"] = typo(r["nom"], rnd)
        caf.append(c)
        cpam.append(r)
        pairs.append((c["id"], r["id"]))
    for j in range(STRANGERS):
        caf.append(_person(rnd, f"cs{j}", f"cf{j}"))
        cpam.append(_person(rnd, f"rs{j}", f"rf{j}"))
    a, b = write_exports(tmp / "exports", caf, cpam)
    link(a, b, tmp / "etape1")
    files = residue_files(tmp, caf, cpam, tmp / "etape1", commune=True)
    final = link(a, b, tmp / "out", residue=files)
    return dict(caf=caf, cpam=cpam, pairs=set(pairs), final=final, exports=(a, b), files=files,
                tmp=tmp)


def test_strangers_not_linked(case):
    got = link_pairs(case["final"].links, case["caf"], case["cpam"])
    residue = {k for k, p in got.items() if p == RESIDUE_PASS}
    stats = case["final"].stats["residue"]
    assert not stats["lsh"]["full_comparison"]  # the blocked path, as on a territory
    assert stats["residue_rows"]["caf_encoded_unlinked"] >= 0.9 * STRANGERS
    false = residue - case["pairs"]
    # the old calibration (share of true pairs among the candidates) linked hundreds here
    assert len(false) <= 2, f"{len(false)} liens entre inconnus"
    # the prior: at most one partner per row of the smaller side, among all pairs
    model = stats["model"]
    assert model["em_match_share_cap"] <= 1.0 / (0.9 * STRANGERS)



def test_bands_not_crowded_and_no_alert(case):
    lsh = case["final"].stats["residue"]["lsh"]
    assert lsh["bits_per_band"] == bloom.PARAMS.bits_per_band  # 2,040 rows: bloom.yaml's width
    assert max(lsh["crowded_band_values_share"].values()) < 0.01
    assert case["final"].stats["residue"]["avertissements"] == []


def test_crowded_bands_are_said(case):
    """Bands whose every value is over the cap compare no pair: the run must say so, not just
    link nothing (what 10M x 10M did with 12-bit bands)."""
    cfg = config_with(case["tmp"], "crowded.yaml", "residue", max_bucket=1)
    res = link(*case["exports"], case["tmp"] / "crowded", config=cfg, residue=case["files"])
    stats = res.stats["residue"]
    assert min(stats["lsh"]["crowded_band_values_share"].values()) > 0.5
    assert len(stats["avertissements"]) == 2
    assert "dépassent 1 lignes" in stats["avertissements"][0]


@pytest.mark.parametrize(("rows", "width", "n_bands"), [
    (1, 12, 80), (79_622, 12, 80), (88_000, 13, 64), (200_000, 15, 64), (761_482, 18, 48)])
def test_band_width_grows_with_the_residue(rows, width, n_bands):
    """The declared pair budget (comparisons.yaml) -> width; the 1M territory keeps 12 bits, and
    every width keeps the bands' row pairs under the budget."""
    budget = load_config().residue["lsh_max_band_pairs"]
    assert budget == 150_000_000
    assert bloom.lsh_width(rows, rows, budget) == width
    bands = bloom.lsh_bands(width)
    assert len(bands) == n_bands
    assert all(w == width and shift + w <= 64 for _, shift, w in bands)
    assert len(bands) * rows * rows / 2**width <= budget


def test_widened_bands_are_said(case):
    """A residue too large for bloom.yaml's bands within the pair budget gets wider bands, and
    the run says that fewer similar pairs are compared (what the 10M x 10M residue does)."""
    cfg = config_with(case["tmp"], "budget.yaml", "residue", lsh_max_band_pairs=10_000)
    res = link(*case["exports"], case["tmp"] / "budget", config=cfg, residue=case["files"])
    stats = res.stats["residue"]
    assert stats["lsh"]["bits_per_band"] > bloom.PARAMS.bits_per_band
    assert any("bandes LSH élargies" in a for a in stats["avertissements"])
