"""The scale bench's exports (bench/scale.py) come from the agency's own `build` on synthetic
ingested extracts, so the central step sees every key of tokens.yaml; the Splink peer
(bench/scale_splink.py) reads the plaintext of the very same rows."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import scale  # noqa: E402
import scale_splink  # noqa: E402

from pipeline.central.match import link  # noqa: E402
from pipeline.shared import bloom  # noqa: E402
from pipeline.shared.token_catalogue import load_catalogue  # noqa: E402

N = 4_000


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scale")
    facts = scale.synthesise(N, out)
    assert facts["true_pairs"] == int(N * 0.92)
    return out


def test_exports_carry_every_token_of_the_catalogue(data: Path) -> None:
    cat = load_catalogue()
    for agency in ("caf", "cpam"):
        export = pl.read_parquet(data / f"{agency}.pseudo.parquet")
        assert export.height == N
        tokens = [c for c in export.columns if c.startswith("tok_")]
        assert tokens == cat.names(agency)
        # the typo families are filled (not a stand-in subset of keys)
        assert export["tok_nomdel_dob_00"].null_count() < N // 2
        assert export["handle"].n_unique() == N


def test_truth_pairs_are_export_handles(data: Path) -> None:
    truth = pl.read_parquet(data / "truth.parquet")
    for agency in ("caf", "cpam"):
        handles = pl.read_parquet(data / f"{agency}.pseudo.parquet", columns=["handle"])
        assert truth.join(handles, left_on=f"{agency}_handle", right_on="handle",
                          how="anti").is_empty()


def test_splink_plaintext_is_the_same_rows(data: Path) -> None:
    caf, cpam, truth = scale_splink.populations(data)
    exp = pl.read_parquet(data / "caf.pseudo.parquet", columns=["handle"])
    assert sorted(caf["unique_id"]) == sorted(exp["handle"])
    assert cpam.height == N
    # blocking recall is measured on the same truth pairs, and the rules reach nearly all
    assert scale_splink.blocking_recall(caf, cpam, truth) > 0.99


def test_link_quality_and_residue_answers(data: Path, tmp_path: Path) -> None:
    link(data / "caf.pseudo.parquet", data / "cpam.pseudo.parquet", tmp_path / "out")
    q = scale.quality(data, tmp_path / "out")
    assert q["precision"] > 0.99 and q["recall"] > 0.99
    # the agencies answer the stage-1 requests with their own residue code: one row per
    # requested handle, the shared lanes
    facts = scale.encode_residues(data, tmp_path / "out", tmp_path / "residu")
    for agency in ("caf", "cpam"):
        request = pl.read_csv(tmp_path / "out" / bloom.RESIDUE_DIR
                              / bloom.RESIDUE_REQUEST.format(provider=agency))
        residue = pl.read_parquet(facts[agency]["path"])
        assert residue.columns == ["handle", *bloom.LANES]
        assert sorted(residue["handle"]) == sorted(request["handle"])
        assert residue.height > 0


def test_one_edit_is_one_edit_away() -> None:
    names = pl.DataFrame({"n": ["ABCDEF"] * 6, "k": [0, 0, 1, 1, 2, 2],
                          "u": [0.0, 0.99, 0.0, 0.99, 0.0, 0.99], "l": ["Z", "F", "Q", "Q",
                                                                     "Q", "Q"]})
    got = names.select(scale.one_edit(pl.col("n"), pl.col("k"), pl.col("u"), pl.col("l")))
    assert got.to_series().to_list() == ["ZBCDEF", "ABCDEG", "BCDEF", "ABCDE", "BACDEF",
                                         "ABCDFE"]


def test_cache_key_follows_parameters_and_catalogue() -> None:
    assert scale.cache_key(1000, 1, 1.0) != scale.cache_key(1000, 2, 1.0)
    assert scale.cache_key(1000, 1, 1.0) == scale.cache_key(1000, 1, 1.0)
    assert ROOT / "pipeline" / "shared" / "tokens.yaml" in scale.BUILD_SOURCES
