"""`link()`: the central linkage of a CAF export with a CPAM export.

Order: deterministic passes (comparisons.yaml `passes`), then Fellegi–Sunter on the records they
left, one-to-one. Writes links.parquet, link_explanations.parquet, clerical_review.parquet and
link_stats.json into `out_dir`. The outputs carry handles, pass names and weights only: never a
token, never a raw identifier.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline.common.errors import InputError
from pipeline.common.files import write_text
from pipeline.common.progress import step
from pipeline.common.tables import write_parquet
from pipeline.match import evaluate, passes, probabilistic
from pipeline.match.config import Config, load_config
from pipeline.match.db import connect, frame, load_export

LINK_COLUMNS = ["caf_handle", "cpam_handle", "pass", "match_weight", "match_probability"]
PROBABILISTIC_PASS = "probabiliste"


@dataclass
class LinkResult:
    links: Path
    explanations: Path
    clerical_review: Path
    stats_path: Path
    n_links: int
    n_clerical: int
    stats: dict[str, Any] = field(default_factory=dict)


def _prior(config: Config, det_links: int, n_l: int, n_r: int, rest_l: int,
           rest_r: int) -> tuple[float, dict[str, float]]:
    """λ for the residual records, from the deterministic passes' link rate.

    The deterministic passes linked `det_links` of the min(n_l, n_r) records that could have a
    partner; we assume the residual records have a partner at that same rate, i.e.
    rate x min(rest_l, rest_r) expected matches among rest_l x rest_r pairs. It is a prior only:
    EM re-estimates the match share inside the blocks, and thresholds act on the posterior.
    """
    smaller = max(min(n_l, n_r), 1)
    rate = min(max(det_links / smaller, 0.05), 0.999)
    pairs = max(rest_l * rest_r, 1)
    expected = rate * max(min(rest_l, rest_r), 1)
    lam = min(max(expected / pairs, 1e-12), 0.5)
    return lam, {"deterministic_link_rate": rate, "expected_residual_matches": expected,
                 "lambda": lam}


def link(
    caf_export: Path,
    cpam_export: Path,
    out_dir: Path,
    *,
    config: Path | None = None,
    truth: Path | None = None,
    memory_limit: str = "4GB",
    temp_dir: Path | None = None,
    threads: int | None = None,
) -> LinkResult:
    """Link the two pseudonymised exports person to person; write the four outputs."""
    cfg = load_config(config)
    out_dir = Path(out_dir)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    con = connect(memory_limit, temp_dir, threads)
    try:
        t = time.perf_counter()
        with step("Lecture des deux exports pseudonymisés"):
            caf_facts = load_export(con, Path(caf_export), "caf", "l", cfg)
            cpam_facts = load_export(con, Path(cpam_export), "cpam", "r", cfg)
        timings["load"] = time.perf_counter() - t
        n_l, n_r = int(caf_facts["rows"]), int(cpam_facts["rows"])

        t = time.perf_counter()
        with step("Passes déterministes"):
            funnel = passes.run_passes(con, cfg)
        timings["deterministic"] = time.perf_counter() - t
        det_links = sum(int(f["linked"]) for f in funnel)

        t = time.perf_counter()
        with step("Blocage des paires candidates"):
            con.execute("CREATE OR REPLACE TEMP TABLE caf_rest AS SELECT id FROM caf_free")
            con.execute("CREATE OR REPLACE TEMP TABLE cpam_rest AS SELECT id FROM cpam_free")
            rest_l = con.execute("SELECT count(*) FROM caf_rest").fetchall()[0][0]
            rest_r = con.execute("SELECT count(*) FROM cpam_rest").fetchall()[0][0]
            block_stats = probabilistic.blocking(con, cfg)
            n_cand = con.execute("SELECT count(*) FROM cand").fetchall()[0][0]
        timings["blocking"] = time.perf_counter() - t

        t = time.perf_counter()
        with step("Modèle de Fellegi–Sunter (u, EM, scores)"):
            probabilistic.compute_gammas(con, cfg, "cand", "cand_gamma")
            lam, prior_facts = _prior(cfg, det_links, n_l, n_r, rest_l, rest_r)
            model, fit_facts = probabilistic.fit(con, cfg, lam, n_cand, rest_l, rest_r)
            probabilistic.build_term_frequencies(con, cfg)
            probabilistic.score(con, cfg, model, "cand_gamma", "cand_scored")
        timings["model"] = time.perf_counter() - t

        t = time.perf_counter()
        with step("Affectation un pour un"):
            rounds = probabilistic.assign_one_to_one(con, "cand_scored", cfg.review_weight)
            con.execute(f"""
                INSERT INTO links
                SELECT lid, rid, '{PROBABILISTIC_PASS}', 'fellegi_sunter' FROM assigned
                WHERE w >= {cfg.link_weight!r}
            """)
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE clerical AS
                SELECT lid, rid FROM assigned WHERE w < {cfg.link_weight!r}
            """)
            lost = con.execute(f"""
                SELECT count(*) FROM cand_scored s ANTI JOIN assigned a
                    ON s.lid = a.lid AND s.rid = a.rid
                WHERE s.w >= {cfg.link_weight!r}
            """).fetchall()[0][0]
        timings["assignment"] = time.perf_counter() - t

        t = time.perf_counter()
        with step("Écriture des liens et explications"):
            # Deterministic links get their model weight too (for explanations and audit).
            con.execute("""
                CREATE OR REPLACE TEMP TABLE det_pairs AS
                SELECT lid, rid FROM links WHERE pass <> 'probabiliste'
            """)
            probabilistic.compute_gammas(con, cfg, "det_pairs", "det_gamma")
            probabilistic.score(con, cfg, model, "det_gamma", "det_scored")
            con.execute("""
                CREATE OR REPLACE TEMP TABLE all_scored AS
                SELECT * FROM det_scored UNION ALL BY NAME
                SELECT s.* FROM cand_scored s SEMI JOIN links k ON s.lid = k.lid AND s.rid = k.rid
                UNION ALL BY NAME
                SELECT s.* FROM cand_scored s SEMI JOIN clerical c
                    ON s.lid = c.lid AND s.rid = c.rid
            """)
            written = _write_outputs(con, cfg, out_dir)
        timings["write"] = time.perf_counter() - t

        pass_counts = dict(con.execute("SELECT pass, count(*) FROM links GROUP BY pass").fetchall())
        stats: dict[str, Any] = {
            "inputs": {"caf": {"rows": n_l, "missing_columns": caf_facts["missing_columns"]},
                       "cpam": {"rows": n_r, "missing_columns": cpam_facts["missing_columns"]}},
            "config": str(cfg.path.name),
            "funnel": {
                "passes": funnel,
                "probabilistic": {
                    "caf_records_left": int(rest_l), "cpam_records_left": int(rest_r),
                    "linked": int(pass_counts.get(PROBABILISTIC_PASS, 0)),
                    "above_threshold_lost_to_one_to_one": int(lost),
                    "assignment_rounds": rounds,
                },
                "links_by_pass": {k: int(v) for k, v in sorted(pass_counts.items())},
                "links_total": int(sum(pass_counts.values())),
                "caf_unlinked": n_l - int(sum(pass_counts.values())),
                "cpam_unlinked": n_r - int(sum(pass_counts.values())),
            },
            "conflicts": {f["pass"]: f["conflicts"] for f in funnel},
            "blocking": {"rules": block_stats, "candidate_pairs": int(n_cand)},
            "model": _model_stats(cfg, model, prior_facts, fit_facts),
            "thresholds": {"link_weight": cfg.link_weight, "review_weight": cfg.review_weight,
                           "link_probability": float(probabilistic_probability(cfg.link_weight)),
                           "review_probability": float(
                               probabilistic_probability(cfg.review_weight))},
            "match_weight_histogram": probabilistic.histogram(con, "cand_scored"),
            "clerical_review": {"pairs": written["clerical"]},
        }
        if truth is not None:
            t = time.perf_counter()
            stats["quality"] = evaluate.evaluate(con, Path(truth), cfg)
            timings["evaluate"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t_all
        stats["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
        stats_path = out_dir / "link_stats.json"
        write_text(stats_path, json.dumps(stats, indent=2, ensure_ascii=False, sort_keys=False)
                   + "\n")
        return LinkResult(
            links=out_dir / "links.parquet",
            explanations=out_dir / "link_explanations.parquet",
            clerical_review=out_dir / "clerical_review.parquet",
            stats_path=stats_path,
            n_links=int(sum(pass_counts.values())),
            n_clerical=written["clerical"],
            stats=stats,
        )
    except duckdb.OutOfMemoryException as exc:
        raise InputError(
            str(out_dir), f"mémoire insuffisante pour la liaison (memory_limit={memory_limit}) ; "
            "augmenter la limite ou indiquer un dossier temporaire sur disque (--temp-dir)"
        ) from exc
    finally:
        con.close()


def probabilistic_probability(weight: float) -> float:
    return 1.0 / (1.0 + 2.0 ** (-weight))


def _model_stats(cfg: Config, model: probabilistic.FittedModel, prior_facts: dict[str, float],
                 fit_facts: dict[str, object]) -> dict[str, Any]:
    comps = []
    for k, c in enumerate(cfg.comparisons):
        levels = []
        for g in range(c.n_levels - 1, -1, -1):
            levels.append({"level": c.level_name(g), "label": c.level_label(g), "gamma": g,
                           "m": float(model.m[k][g]), "u": float(model.u[k][g]),
                           "weight": float(model.weights[k][g])})
        comps.append({"comparison": c.name, "label": c.label, "levels": levels,
                      "tf_adjusted": any(lv.tf for lv in c.levels)})
    return {"prior": {**prior_facts, "prior_weight": model.prior}, **fit_facts,
            "comparisons": comps}


def _write_outputs(con: duckdb.DuckDBPyConnection, cfg: Config, out_dir: Path) -> dict[str, int]:
    links = frame(con, f"""
        SELECT l.handle AS caf_handle, r.handle AS cpam_handle, k.pass,
               s.w AS match_weight, s.p AS match_probability
        FROM links k
        JOIN caf l ON l.id = k.lid
        JOIN cpam r ON r.id = k.rid
        JOIN all_scored s ON s.lid = k.lid AND s.rid = k.rid
        WHERE k.pass <> '{PROBABILISTIC_PASS}' OR s.w >= {cfg.link_weight!r}
    """)
    clerical = frame(con, """
        SELECT l.handle AS caf_handle, r.handle AS cpam_handle, 'revue' AS pass,
               s.w AS match_weight, s.p AS match_probability
        FROM clerical c
        JOIN caf l ON l.id = c.lid
        JOIN cpam r ON r.id = c.rid
        JOIN cand_scored s ON s.lid = c.lid AND s.rid = c.rid
    """)
    links = _typed(links)
    clerical = _typed(clerical)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_parquet(links, out_dir / "links.parquet", sort_by=["caf_handle", "cpam_handle"])
    write_parquet(clerical, out_dir / "clerical_review.parquet",
                  sort_by=["caf_handle", "cpam_handle"])
    write_parquet(_explanations(con, cfg), out_dir / "link_explanations.parquet",
                  sort_by=["caf_handle", "cpam_handle", "order"])
    return {"links": links.height, "clerical": clerical.height}


def _typed(df: pl.DataFrame) -> pl.DataFrame:
    return df.select(
        pl.col("caf_handle").cast(pl.String), pl.col("cpam_handle").cast(pl.String),
        pl.col("pass").cast(pl.String), pl.col("match_weight").cast(pl.Float64),
        pl.col("match_probability").cast(pl.Float64),
    )


def _explanations(con: duckdb.DuckDBPyConnection, cfg: Config) -> pl.DataFrame:
    """Long table: per linked or reviewed pair, the prior then each comparison's contribution."""
    parts = ["SELECT lid, rid, 0 AS ord, 'a_priori' AS comparison, NULL::TINYINT AS gamma, "
             "w - (" + " + ".join(f"w_{n}" for n in _weight_names(cfg)) + ") AS weight "
             "FROM all_scored"]
    order = 1
    for c in cfg.comparisons:
        parts.append(f"SELECT lid, rid, {order} AS ord, '{c.name}' AS comparison, "
                     f"g_{c.name} AS gamma, w_{c.name} AS weight FROM all_scored")
        order += 1
        if c.levels and c.levels[0].tf:
            parts.append(f"SELECT lid, rid, {order} AS ord, 'tf_{c.name}' AS comparison, "
                         f"g_{c.name} AS gamma, w_tf_{c.name} AS weight FROM all_scored")
            order += 1
    df = frame(con, f"""
        SELECT l.handle AS caf_handle, r.handle AS cpam_handle, e.ord AS "order",
               e.comparison, e.gamma, e.weight
        FROM ({' UNION ALL '.join(parts)}) e
        JOIN caf l ON l.id = e.lid
        JOIN cpam r ON r.id = e.rid
    """)
    labels = []
    for c in cfg.comparisons:
        for g in range(-1, c.n_levels):
            labels.append({"comparison": c.name, "gamma": g, "level": c.level_name(g),
                           "label": c.level_label(g)})
            if c.levels and c.levels[0].tf:
                labels.append({"comparison": f"tf_{c.name}", "gamma": g,
                               "level": c.level_name(g),
                               "label": "ajustement selon la fréquence du nom"})
    lab = pl.DataFrame(labels, schema={"comparison": pl.String, "gamma": pl.Int8,
                                       "level": pl.String, "label": pl.String})
    df = df.with_columns(pl.col("gamma").cast(pl.Int8), pl.col("order").cast(pl.Int16))
    df = df.join(lab, on=["comparison", "gamma"], how="left")
    df = df.with_columns(
        pl.when(pl.col("comparison") == "a_priori").then(pl.lit("a_priori"))
        .otherwise(pl.col("level")).alias("level"),
        pl.when(pl.col("comparison") == "a_priori")
        .then(pl.lit("probabilité a priori qu'une paire soit la même personne"))
        .otherwise(pl.col("label")).alias("label"),
    )
    return df.select("caf_handle", "cpam_handle", "order", "comparison", "level", "label",
                     "gamma", pl.col("weight").cast(pl.Float64))


def _weight_names(cfg: Config) -> list[str]:
    names = []
    for c in cfg.comparisons:
        names.append(c.name)
        if c.levels and c.levels[0].tf:
            names.append(f"tf_{c.name}")
    return names
