"""The stage-1 writer's low-memory path (column by column, one file at a time, above
engine.LOW_MEMORY_WRITE_PAIRS scored pairs) writes the same bytes as the side-by-side path."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import yaml
from match_fixtures import export, noisy_population

from pipeline.central.match import engine, link
from pipeline.shared.linkage_model import DEFAULT_CONFIG

FILES = [*engine.OUTPUT_FILES.values(), "link_stats.json"]


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | list[Path]]:
    """A CAF export and a coverage side in two provider files (the provider column goes along
    with the links and the review pairs, not with the explanations); two passes only and a low
    review weight, so that the model scores the rest and some CAF records have several review
    pairs (the writer's sort on both handles)."""
    tmp = tmp_path_factory.mktemp("low_memory")
    cfg = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    cfg["passes"] = [p for p in cfg["passes"] if p["name"] in ("nir", "nom_dob")]
    cfg["probabilistic"]["review_weight"] = -12.0
    (tmp / "cfg.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    caf, cpam, _ = noisy_population(300, seed=7, nir_share=0.3)
    caf_df, cpam_df = export(caf, "caf"), export(cpam, "cpam")
    half = cpam_df.height // 2
    caf_df.write_parquet(tmp / "caf.parquet")
    cpam_df.head(half).with_columns(fournisseur=pl.lit("CPAM")).write_parquet(tmp / "cpam.parquet")
    cpam_df.slice(half).with_columns(fournisseur=pl.lit("MSA")).write_parquet(tmp / "msa.parquet")
    return {"tmp": tmp, "caf": tmp / "caf.parquet", "config": tmp / "cfg.yaml",
            "cover": [tmp / "cpam.parquet", tmp / "msa.parquet"]}


def _run(exports: dict, out: Path, monkeypatch: pytest.MonkeyPatch, threshold: int) -> list[str]:
    """Link with the writer's threshold set to `threshold`; which writer paths ran."""
    ran: list[str] = []
    real = engine._write_low_memory

    def spy(columns: list[pl.Series], out_dir: Path) -> dict[str, int]:
        ran.append("low_memory")
        return real(columns, out_dir)

    with monkeypatch.context() as m:
        m.setattr(engine, "LOW_MEMORY_WRITE_PAIRS", threshold)
        m.setattr(engine, "_write_low_memory", spy)
        link(exports["caf"], exports["cover"], out, config=exports["config"], threads=2)
    return ran


def test_low_memory_writer_writes_the_same_bytes(exports: dict,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    tmp = exports["tmp"]
    assert _run(exports, tmp / "whole", monkeypatch, 10**12) == []
    assert _run(exports, tmp / "low", monkeypatch, 0) == ["low_memory"]
    for name in FILES:
        assert (tmp / "low" / name).read_bytes() == (tmp / "whole" / name).read_bytes(), name
    links = pl.read_parquet(tmp / "low" / engine.OUTPUT_FILES["links"])
    review = pl.read_parquet(tmp / "low" / engine.OUTPUT_FILES["clerical"])
    explained = pl.read_parquet(tmp / "low" / engine.OUTPUT_FILES["explanations"])
    # the fixture exercises every part: links, review pairs, the provider column
    assert links.height > 100 and review.height > 0
    assert set(links["fournisseur"]) == {"CPAM", "MSA"}
    assert "fournisseur" not in explained.columns
    assert explained.height == links.height + review.height
    assert links.select(engine.PAIR_KEY).equals(links.select(engine.PAIR_KEY).sort(engine.PAIR_KEY))


def _pairs_frame(n: int, seed: int) -> pl.DataFrame:
    """Unsorted pairs as pairs_output.sql brings them (several chunks, as from an engine):
    review pairs share CAF handles (ties broken on the CPAM handle), a provider column."""
    import numpy as np

    rng = np.random.default_rng(seed)
    caf = [f"{v:032x}" for v in rng.integers(0, 2**62, n)]
    is_link = rng.random(n) < 0.8
    # a quarter of the review pairs take the CAF handle of another review pair
    review = np.flatnonzero(~is_link)
    for i, j in zip(review[::4], review[1::4], strict=False):
        caf[j] = caf[i]
    df = pl.DataFrame({
        "caf_handle": caf,
        "cpam_handle": [f"{v:032x}" for v in rng.permutation(n) * 7919 + 11],
        "pass": np.where(is_link, "nir", "revue"),
        "match_weight": rng.normal(5, 4, n),
        "prior_weight": np.full(n, -20.5),
        "identite_level": rng.choice(["exact", "proche", "autre"], n),
        "identite_weight": rng.normal(2, 3, n),
        "is_link": is_link,
        "fournisseur": rng.choice(["CPAM", "MSA"], n),
    })
    return pl.concat([df.slice(k, 700) for k in range(0, n, 700)], rechunk=False)


def test_low_memory_writer_breaks_caf_ties_like_the_whole_frame_sort(tmp_path: Path) -> None:
    df = _pairs_frame(5_000, seed=3)
    assert df.n_chunks() > 1 and df.filter(~pl.col("is_link"))["caf_handle"].is_duplicated().any()
    whole = engine._write_side_by_side(engine._sorted_pairs(df), tmp_path / "whole")
    low = engine._write_low_memory(df.get_columns(), tmp_path / "low")
    assert whole == low and low["clerical"] > 0
    for name in engine.OUTPUT_FILES.values():
        assert (tmp_path / "low" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
    review = pl.read_parquet(tmp_path / "low" / engine.OUTPUT_FILES["clerical"])
    assert review.select(engine.PAIR_KEY).equals(review.select(engine.PAIR_KEY).sort(
        engine.PAIR_KEY))
    assert review["fournisseur"].null_count() == 0
