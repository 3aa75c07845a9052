"""The central operator's attacks on the residue filters: proven on the plain CLK, then judging
the hardened encoding (pipeline/agency/pseudonymise/attacks/bloom_attacks.py).

A sample-sized residue: RESIDUE_ROWS rows of the committed sample's CAF extract, ingested by the
real code and encoded by the shipped encoder (pipeline/shared/bloom.py). On the control
(hardened=False) each attack must FIND the leak, or these tests fail: the birth year and the
full date far above the prior, the sex, the weight tracking the name lengths, records
re-identified by graph matching. On the hardened encoding the targets hold: birth year for no
more records than the prior + 2 points, full date < 1 %, names < 1 %.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipeline.agency.ingest.api import ingest
from pipeline.agency.pseudonymise.attacks.bloom_attacks import measure
from pipeline.agency.pseudonymise.attacks.bloom_items import bits_from_lanes, scheme_encode
from pipeline.shared import bloom

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "raw"
RESIDUE_ROWS = 1000
KEY = bytes(range(32))


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> pl.DataFrame:
    work = tmp_path_factory.mktemp("caf")
    ingest("caf", SAMPLE / "caf_extract.csv", work)
    df = pl.read_parquet(work / "ingested.parquet").select(
        pl.col("nom_naissance").alias("nom"), "prenom1", "naiss_annee", "naiss_mois",
        "naiss_jour", "sexe", "code_commune")
    return df.sample(RESIDUE_ROWS, seed=7)


def _lanes(plain: pl.DataFrame, hardened: bool) -> pl.DataFrame:
    iso = plain.select(pl.format("{}-{}-{}", pl.col("naiss_annee"),
                                 pl.col("naiss_mois").cast(pl.String).str.zfill(2),
                                 pl.col("naiss_jour").cast(pl.String).str.zfill(2)))
    comps = bloom.components_from(nom=plain["nom"], prenom=plain["prenom1"],
                                  date_naissance=iso.to_series(), sexe=plain["sexe"],
                                  commune=plain["code_commune"])
    return bloom.encode(comps, KEY, hardened=hardened)


@pytest.fixture(scope="module")
def control(plain) -> dict:
    return measure(_lanes(plain, False), plain)


@pytest.fixture(scope="module")
def hardened(plain) -> dict:
    return measure(_lanes(plain, True), plain)


def test_lanes_bit_order() -> None:
    """Lane L bit b (least significant first, two's complement) is filter bit 64 L + b."""
    lanes = pl.DataFrame({"bf_00": [1, 0], "bf_01": [0, -(1 << 63)]}, schema={
        "bf_00": pl.Int64, "bf_01": pl.Int64})
    bits = bits_from_lanes(lanes)
    assert bits.shape == (2, 128)
    assert np.flatnonzero(bits[0]).tolist() == [0]
    assert np.flatnonzero(bits[1]).tolist() == [127]


def test_scheme_encode_is_the_shipped_encoder(plain) -> None:
    head = plain.head(50)
    assert np.array_equal(scheme_encode(head, KEY, hardened=True),
                          bits_from_lanes(_lanes(head, True)))


def test_pattern_mining_breaks_the_control(control) -> None:
    mined = control["fouille_de_motifs"]
    assert set(mined["champs_nommes"]) == {"naiss_annee", "naiss_mois", "naiss_jour", "sexe"}
    assert control["annee_naissance_retrouvee"] >= control["prior_annee"] + 0.2
    assert control["date_complete_retrouvee"] >= 0.05 > 10 * control["prior_date_complete"]
    assert mined["sexe_retrouve"] >= 0.95
    assert mined["mois_retrouve"] >= 0.3 and mined["jour_retrouve"] >= 0.3
    # the name step (measured 4.4 % surnames, 5.0 % first names against a ~2 % prior)
    assert control["noms_retrouves"] >= mined["prior_noms"] + 0.02
    assert control["prenoms_retrouves"] >= mined["prior_prenoms"] + 0.02


def test_weight_and_graph_break_the_control(control) -> None:
    weight = control["poids_de_hamming"]
    assert weight["correlation_poids_longueur_noms"] >= 0.7
    assert weight["longueur_noms_retrouvee"] >= weight["prior_longueur_noms"] + 0.1
    assert control["reidentifies_graphe"] >= 0.2


def test_hardened_within_targets(hardened) -> None:
    assert hardened["annee_naissance_retrouvee"] <= hardened["prior_annee"] + 0.02
    assert hardened["date_complete_retrouvee"] < 0.01
    assert hardened["noms_retrouves"] < 0.01 and hardened["prenoms_retrouves"] < 0.01
    assert hardened["fouille_de_motifs"]["groupes_de_positions"] == 0


def test_hardened_graph_and_weight(hardened) -> None:
    """Guarded so a regression shows (a finding, not a pass): at full overlap (the attacker
    holds the plaintext of exactly these records) the graph attack re-identifies ~1 % of the
    hardened records at best (the best round picked with the truth), ten times chance (1 in
    1,000). The balanced diffusion input keeps the weight from following the names (measured
    correlation 0.09, against 0.83 on the control and 0.66 before balancing)."""
    assert hardened["reidentifies_graphe"] < 0.02
    weight = hardened["poids_de_hamming"]
    assert abs(weight["correlation_poids_longueur_noms"]) < 0.3
    assert weight["longueur_noms_retrouvee"] <= weight["prior_longueur_noms"] + 0.02
