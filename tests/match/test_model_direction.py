"""Tests that guard the direction of the Fellegi–Sunter model.

A flipped sign (prior weight, a level's weight, the sum of weights, an agreement condition in
comparisons.yaml) can survive small, clean test data: EM still converges and the deterministic
passes still link most people. These tests fail on such a flip: model properties on their own,
the fitted model of a real run, and linkage quality at a size and noise where a wrong sign
shows (2,000 households at 3x noise: a flipped prior adds over a hundred false links).
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from match_fixtures import config_with_passes

from pipeline.central.engines import EngineSettings
from pipeline.central.engines.duckdb_engine import DuckDBEngine
from pipeline.central.match import link
from pipeline.central.match.model import level_weights, prior_weight, probability, run_em
from pipeline.central.match.probabilistic import FittedModel, score
from pipeline.common.tables import write_parquet
from pipeline.evaluate import prf
from pipeline.shared.linkage_model import load_config

KEY = bytes(range(32))  # stand-in linkage key (never a real one)
HOUSEHOLDS, NOISE, SEED = 2000, 3.0, 99


# ---------------------------------------------------------------- model properties


def test_prior_weight_rises_with_lambda_and_is_negative_below_one_half() -> None:
    lams = np.array([1e-6, 1e-4, 0.01, 0.2, 0.5, 0.8, 0.99])
    weights = np.array([prior_weight(x) for x in lams])
    assert np.all(np.diff(weights) > 0)
    assert weights[0] < -15 and prior_weight(0.5) == pytest.approx(0.0)
    assert weights[-1] > 0
    # the weight is the log2 prior odds: back to the same probability
    np.testing.assert_allclose([probability(w) for w in weights], lams, rtol=1e-9)


def test_probability_rises_with_weight() -> None:
    w = np.linspace(-20, 20, 41)
    p = probability(w)
    assert np.all(np.diff(p) > 0)
    assert p[0] < 1e-5 and p[-1] > 1 - 1e-5


def test_level_weight_positive_when_m_above_u() -> None:
    w = level_weights([np.array([0.1, 0.9])], [np.array([0.95, 0.05])])[0]
    assert w[1] > 0 > w[0]
    assert w[1] == pytest.approx(np.log2(0.9 / 0.05))


def test_em_on_realistic_patterns_puts_m_above_u_on_agreement() -> None:
    rng = np.random.default_rng(5)
    n, lam = 50_000, 0.05
    m = np.array([0.95, 0.9, 0.92, 0.97])
    u = np.array([0.01, 0.02, 0.003, 0.5])
    match = rng.random(n) < lam
    x = (rng.random((n, 4)) < np.where(match[:, None], m, u)).astype(int)
    patterns, counts = np.unique(x, axis=0, return_counts=True)
    res = run_em(patterns, counts, [2] * 4, lam_init=0.2, pseudo_count=0.0)
    for k in range(4):
        assert res.m[k][1] > res.u[k][1], k
    w = level_weights(res.m, res.u)
    assert all(wk[1] > 0 > wk[0] for wk in w)
    assert res.lam == pytest.approx(lam, abs=0.01)


def test_thresholds_point_the_right_way() -> None:
    """A link needs positive log-odds (probability above one half); the clerical band lies
    below the link threshold, never above."""
    cfg = load_config()
    assert cfg.link_weight > 0 and probability(cfg.link_weight) > 0.5
    assert cfg.review_weight < cfg.link_weight


# ---------------------------------------------------------------- one real run


@pytest.fixture(scope="module")
def harsh_run(tmp_path_factory) -> dict:
    """2,000 households at 3x noise: generated, ingested, tokenised and linked once."""
    from pipeline.agency.ingest.api import ingest
    from pipeline.agency.pseudonymise.core import build
    from pipeline.synth import generate

    root = tmp_path_factory.mktemp("harsh")
    generate(households=HOUSEHOLDS, seed=SEED, noise=NOISE, out=root / "data")
    exports, lines = {}, {}
    for agency in ("caf", "cpam"):
        work = root / agency
        ingest(agency, root / "data" / "raw" / f"{agency}_extract.csv", work)
        export, handles, _ = build(pl.read_parquet(work / "ingested.parquet"), agency, KEY, seed=1)
        exports[agency] = write_parquet(export, root / f"{agency}.pseudo.parquet",
                                        sort_by=["handle"])
        lines[agency] = handles.select(pl.col("handle").alias(f"{agency}_handle"),
                                       pl.col("line").cast(pl.Int64).alias(f"{agency}_line"))
    # version 2: the full match-key hierarchy leaves Fellegi–Sunter almost nothing at this noise;
    # with the NIR, child and name + date passes only, the model has real work and a flip shows
    link(exports["caf"], exports["cpam"], root / "out", threads=2,
         config=config_with_passes(root, ("nir", "enfant", "nom_dob")))
    pair = ["caf_line", "cpam_line"]
    truth = pl.read_csv(root / "data" / "truth" / "persons.csv", separator=";",
                        infer_schema_length=10_000).drop_nulls(pair).select(
        pl.col(pair).cast(pl.Int64))
    linkable = truth.join(lines["caf"], on="caf_line", how="semi").join(
        lines["cpam"], on="cpam_line", how="semi")
    links = pl.read_parquet(root / "out" / "links.parquet").join(
        lines["caf"], on="caf_handle").join(lines["cpam"], on="cpam_handle")
    return {"links": links, "linkable": linkable,
            "stats": json.loads((root / "out" / "link_stats.json").read_text("utf-8"))}


def test_fitted_model_points_the_right_way(harsh_run) -> None:
    model = harsh_run["stats"]["model"]
    assert model["prior"]["prior_weight"] < 0  # a random pair is far more likely a non-match
    assert model["prior"]["prior_weight"] == pytest.approx(
        prior_weight(model["prior"]["lambda"]))
    for comp in model["comparisons"]:
        by_level = {lv["level"]: lv for lv in comp["levels"]}
        top = comp["levels"][0]
        assert top["m"] > top["u"] and top["weight"] > 0, comp["comparison"]
        assert by_level["else"]["weight"] < 0, comp["comparison"]


def test_agreement_raises_the_scored_weight(harsh_run) -> None:
    """Through the SQL scoring: agreeing on any one comparison raises a pair's weight, and a
    pair agreeing everywhere is linked while one agreeing nowhere is not even reviewed."""
    cfg = load_config()
    stats = harsh_run["stats"]["model"]
    comps = {c["comparison"]: c for c in stats["comparisons"]}
    m = [np.array([lv["m"] for lv in sorted(comps[c.name]["levels"], key=lambda x: x["gamma"])])
         for c in cfg.comparisons]
    u = [np.array([lv["u"] for lv in sorted(comps[c.name]["levels"], key=lambda x: x["gamma"])])
         for c in cfg.comparisons]
    lam = stats["prior"]["lambda"]
    model = FittedModel(m=m, u=u, weights=level_weights(m, u), lam=lam, prior=prior_weight(lam),
                        em=None)
    tops = [c.n_levels - 1 for c in cfg.comparisons]
    rows = [tops, [0] * len(tops)]
    for k in range(len(tops)):  # all agree except comparison k
        rows.append([0 if j == k else t for j, t in enumerate(tops)])
    cols = {f"g_{c.name}": [r[k] for r in rows] for k, c in enumerate(cfg.comparisons)}
    tf = {f"tfv_{c.name}": [None] * len(rows) for c in cfg.comparisons
          if c.levels and c.levels[0].tf}
    with DuckDBEngine(EngineSettings(threads=2)) as engine:
        src = engine.load_frame("src", pl.DataFrame({"i": list(range(len(rows))), **cols, **tf},
                                                    schema_overrides={k: pl.Int64 for k in tf}))
        tf_tables = {c.levels[0].tf: engine.load_frame(
            f"tf_{c.levels[0].tf}", pl.DataFrame(schema={"v": pl.Int64, "f": pl.Float64}))
            for c in cfg.comparisons if c.levels and c.levels[0].tf}
        scored = score(engine, cfg, model, src, "scored", tf_tables)
        w = dict(engine.rows(f"SELECT i, w FROM {scored}"))
    assert w[0] >= cfg.link_weight
    assert w[1] < cfg.review_weight
    for k in range(len(tops)):
        assert w[0] > w[2 + k], cfg.comparisons[k].name


def test_linkage_quality_shows_a_wrong_sign(harsh_run) -> None:
    pair = ["caf_line", "cpam_line"]
    links, linkable = harsh_run["links"], harsh_run["linkable"]
    overall = prf(links.select(pair), linkable)
    assert overall["precision"] >= 0.995, overall
    assert overall["recall"] >= 0.96, overall  # 0.967 measured with these three passes
    prob = links.filter(pl.col("pass") == "probabiliste")
    assert prob.height > 50  # the probabilistic pass has real work at this noise
    assert prf(prob.select(pair), linkable)["precision"] >= 0.97
