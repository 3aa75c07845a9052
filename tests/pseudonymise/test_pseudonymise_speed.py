"""What the pseudonymise step's speed-ups must not change: row alignment of the tokens computed
in their own thread, the leakage gate's exactness on systematic faults, the attacks' household
sample, and "nothing half-written" when the attacks fail after the files were written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from helpers_pseudonymise import KEY

from pipeline.agency.pseudonymise import core
from pipeline.agency.pseudonymise.core import Materials, build, pseudonymise
from pipeline.agency.pseudonymise.handles import handle_order
from pipeline.agency.pseudonymise.leakage import (
    agency_truth,
    frequency_leakage_frame,
    sample_by_household,
)
from pipeline.agency.pseudonymise.synthetic import ingested
from pipeline.agency.pseudonymise.tokens import V1_CATALOGUE, compute_tokens, load_catalogue
from pipeline.common.tables import write_parquet
from pipeline.shared import leak_scan
from pipeline.shared.leak_scan import scan_frame


@pytest.fixture(scope="module")
def caf_case() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    df = ingested("caf", 2000, seed=4)
    export, handles, _ = build(df, "caf", KEY, seed=2)
    return df, export, handles


def test_tokens_stay_on_their_row(caf_case) -> None:
    """Each exported row carries the tokens of its own ingested line, even when the extract
    arrives out of line order (tokens and attributes are computed apart, then joined)."""
    df, _, _ = caf_case
    shuffled = df.sample(fraction=1.0, shuffle=True, seed=3)
    export, handles, _ = build(shuffled, "caf", KEY, seed=2)
    expected = pl.concat([df.select("line"), compute_tokens(df, "caf", KEY)], how="horizontal")
    got = export.join(handles.select("handle", "line"), on="handle").select(expected.columns)
    assert got.sort("line").equals(expected.sort("line"))


def test_token_format_check_counts_a_column_of_raw_numbers_exactly(caf_case) -> None:
    """Int64 tokens: a token column holding raw numbers (here the NIRs, read as integers) is
    caught and every such cell counted; the clean export is not."""
    df, export, handles = caf_case
    assert scan_frame(export, df, "caf")["ok"]
    nirs = (export.select("handle").join(handles.select("handle", "line"), on="handle")
            .join(df.select("line", "nir"), on="line", how="left")["nir"]
            .str.slice(0, 13).cast(pl.Int64, strict=False))
    planted = export.with_columns(tok_nom_dob=nirs)
    found = {f["colonne"]: f["nombre"] for f in scan_frame(planted, df, "caf")["findings"]
             if f["controle"] == "format_jeton"}
    assert found == {"tok_nom_dob": nirs.drop_nulls().len()}
    assert found["tok_nom_dob"] > 1000


def test_small_token_values_stay_within_chance_on_random_tokens() -> None:
    """1M random 64-bit tokens: about 488 fall below 2^52 by chance, never flagged; the same
    column with 1 % raw numbers is."""
    rng = np.random.default_rng(7)
    tokens = pl.Series(rng.integers(-(2**63), 2**63 - 1, 1_000_000, dtype=np.int64,
                                    endpoint=True))
    assert leak_scan._small_token_values(tokens) == 0
    raw = tokens.scatter(np.arange(10_000), rng.integers(10**12, 3 * 10**15, 10_000))
    assert leak_scan._small_token_values(raw) >= 10_000


def test_household_sample_keeps_whole_households_and_is_stable(caf_case) -> None:
    _, export, _ = caf_case
    sample = sample_by_household(export, 500)
    assert 300 < sample.height < 700
    kept = export.filter(pl.col("foyer").is_in(sample["foyer"].implode()))
    assert kept.height == sample.height  # no household cut in two
    assert sample_by_household(export, 500).equals(sample)
    assert sample_by_household(export, export.height).equals(export)


def test_sampled_uniqueness_still_shows_a_partitioning_token(caf_case) -> None:
    """Above the sample size the uniqueness figures come from whole sampled households: a token
    that partitions the export (the version 1 control's sex token) shows there with the
    commonest share it has on every row, and near-unique keys stay near-unique."""
    df, _, _ = caf_case
    v1, handles, _ = build(df, "caf", KEY, seed=2, catalogue=load_catalogue(V1_CATALOGUE))
    truth = agency_truth(df, handles, "caf")
    res = frequency_leakage_frame(v1, truth=truth, sample_rows=600)
    assert res["echantillon_attaques"]["echantillonne"]
    full = frequency_leakage_frame(v1)["unicite"]
    sampled = res["unicite"]
    assert full["tok_sexe"]["frequence_max"] > 0.4
    assert abs(sampled["tok_sexe"]["frequence_max"] - full["tok_sexe"]["frequence_max"]) < 0.05
    assert sampled["tok_sexe"]["non_nuls"] < full["tok_sexe"]["non_nuls"]


def test_no_export_left_when_the_attacks_fail(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "caf"
    write_parquet(ingested("caf", 200, seed=9), work / "ingested.parquet", sort_by=["line"],
                  private=True)

    def broken(*args: object, **kwargs: object) -> dict:
        raise RuntimeError("attaque en échec")

    monkeypatch.setattr(core, "frequency_leakage_frame", broken)
    with pytest.raises(RuntimeError, match="attaque en échec"):
        pseudonymise("caf", work, work / "keys", tmp_path / "c.yaml", work / "export", seed=1,
                     materials=Materials(KEY, "x", "test", None, None, True), sign=False)
    assert not (work / "export" / "caf.pseudo.parquet").exists()
    assert not (work / "handles.parquet").exists()
    assert not (work / "export" / "caf.leakage.json").exists()


def _by_handle(df: pl.DataFrame) -> pl.DataFrame:
    return df[handle_order(df["handle"])]


def test_handle_order_is_the_text_sort(caf_case) -> None:
    _, export, _ = caf_case
    shuffled = export.sample(fraction=1.0, shuffle=True, seed=5)
    assert _by_handle(shuffled).equals(shuffled.sort("handle"))
    # two handles sharing their first 64 bits, or a non-hex one: the text sort decides
    for planted in ("0" * 16 + "f" * 16, "0" * 16 + "e" * 16), ("zz" + "0" * 30, "1" * 32):
        frame = pl.DataFrame({"handle": [*planted, "a" * 32], "v": [1, 2, 3]})
        assert _by_handle(frame).equals(frame.sort("handle"))
