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
from pipeline.match.config import IDENTIFIER_ROLE, Comparison, Config, load_config
from pipeline.match.db import connect, frame, load_export

LINK_COLUMNS = ["caf_handle", "cpam_handle", "pass", "match_weight", "match_probability"]


@dataclass
class LinkResult:
    links: Path
    explanations: Path
    clerical_review: Path
    stats_path: Path
    n_links: int
    n_clerical: int
    stats: dict[str, Any] = field(default_factory=dict)


def _prior(config: Config, det_links: int, n_l: int, n_r: int) -> tuple[float, dict[str, float]]:
    """λ = probability that two random records are the same person, from the passes' link rate.

    As Splink's estimate_probability_two_random_records_match: the deterministic passes found
    `det_links` of the n_l x n_r possible pairs, with an assumed recall `deterministic_recall`
    (comparisons.yaml). The same per-pair prior is used for the residual records; EM's own
    in-block match share is reported next to it as a check (link_stats.json, model).
    """
    pairs = max(n_l * n_r, 1)
    lam = det_links / pairs / config.deterministic_recall
    lam = min(max(lam, 1.0 / pairs), 0.5)
    return lam, {"deterministic_links": det_links,
                 "deterministic_recall_assumed": config.deterministic_recall,
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
    cpu0 = time.process_time()
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

        # Model weights of the deterministic links (explanations) and EM's starting m.
        t = time.perf_counter()
        con.execute("""
            CREATE OR REPLACE TEMP TABLE det_pairs AS
            SELECT lid, rid, pass FROM links
        """)
        probabilistic.compute_gammas(con, cfg, "det_pairs", "det_gamma")
        # EM's starting m comes from the identifier pass's links, wherever it stands.
        id_pass = cfg.role_pass(IDENTIFIER_ROLE)
        con.execute(f"CREATE OR REPLACE TEMP VIEW det_gamma_first AS "
                    f"SELECT g.* FROM det_gamma g JOIN det_pairs d USING (lid, rid) "
                    f"WHERE d.pass = '{id_pass.name if id_pass else ''}'")
        m_prior = probabilistic.m_prior(con, cfg, "det_gamma_first")
        timings["deterministic_levels"] = time.perf_counter() - t

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
            lam, prior_facts = _prior(cfg, det_links, n_l, n_r)
            model, fit_facts = probabilistic.fit(con, cfg, lam, n_cand, rest_l, rest_r,
                                                 m_prior_counts=m_prior)
            probabilistic.build_term_frequencies(con, cfg)
            probabilistic.score(con, cfg, model, "cand_gamma", "cand_scored")
        timings["model"] = time.perf_counter() - t

        t = time.perf_counter()
        with step("Affectation un pour un"):
            rounds = probabilistic.assign_one_to_one(con, "cand_scored", cfg.review_weight)
            con.execute(f"""
                INSERT INTO links
                SELECT lid, rid, '{cfg.probabilistic_pass.name}', 'fellegi_sunter' FROM assigned
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
                    "pass": cfg.probabilistic_pass.name,
                    "caf_records_left": int(rest_l), "cpam_records_left": int(rest_r),
                    "linked": int(pass_counts.get(cfg.probabilistic_pass.name, 0)),
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
        # Wall and CPU seconds (all DuckDB threads) go to their own file: link_stats.json stays a
        # deterministic output (same inputs -> same bytes), timings never are.
        measured = {"timings_s": {k: round(v, 3) for k, v in timings.items()},
                    "cpu_s": round(time.process_time() - cpu0, 3)}
        stats_path = out_dir / "link_stats.json"
        write_text(out_dir / "link_timings.json", json.dumps(measured, indent=2) + "\n")
        write_text(stats_path, json.dumps(stats, indent=2, ensure_ascii=False, sort_keys=False)
                   + "\n")
        stats |= measured
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
    links = frame(con, """
        SELECT l.handle AS caf_handle, r.handle AS cpam_handle, k.pass,
               s.w AS match_weight, s.p AS match_probability
        FROM links k
        JOIN caf_handles l ON l.id = k.lid
        JOIN cpam_handles r ON r.id = k.rid
        JOIN all_scored s ON s.lid = k.lid AND s.rid = k.rid
    """)
    clerical = frame(con, """
        SELECT l.handle AS caf_handle, r.handle AS cpam_handle, 'revue' AS pass,
               s.w AS match_weight, s.p AS match_probability
        FROM clerical c
        JOIN caf_handles l ON l.id = c.lid
        JOIN cpam_handles r ON r.id = c.rid
        JOIN cand_scored s ON s.lid = c.lid AND s.rid = c.rid
    """)
    links = _typed(links)
    clerical = _typed(clerical)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_parquet(links, out_dir / "links.parquet", sort_by=["caf_handle", "cpam_handle"])
    write_parquet(clerical, out_dir / "clerical_review.parquet",
                  sort_by=["caf_handle", "cpam_handle"])
    counts = {"links": links.height, "clerical": clerical.height}
    del links, clerical  # one large frame at a time (10 M links: about 1 GB each)
    write_parquet(_explanations(con, cfg), out_dir / "link_explanations.parquet",
                  sort_by=["caf_handle", "cpam_handle"])
    return counts


def _typed(df: pl.DataFrame) -> pl.DataFrame:
    return df.select(
        pl.col("caf_handle").cast(pl.String), pl.col("cpam_handle").cast(pl.String),
        pl.col("pass").cast(pl.String), pl.col("match_weight").cast(pl.Float64),
        pl.col("match_probability").cast(pl.Float64),
    )


def _level_case(c: Comparison) -> str:
    whens = " ".join(f"WHEN {g} THEN '{c.level_name(g)}'" for g in range(-1, c.n_levels))
    return f"(CASE g_{c.name} {whens} END)"


def _explanations(con: duckdb.DuckDBPyConnection, cfg: Config) -> pl.DataFrame:
    """Waterfall data, one row per linked or reviewed pair (wide: one column pair per comparison).

    match_weight = prior_weight + the sum of the *_weight columns; *_level is the level name of
    comparisons.yaml (its French label is in link_stats.json, model.comparisons).
    """
    cols = ["s.w - (" + " + ".join(f"s.w_{n}" for n in _weight_names(cfg)) + ") AS prior_weight"]
    for c in cfg.comparisons:
        cols.append(f"{_level_case(c)} AS {c.name}_level")
        cols.append(f"s.w_{c.name} AS {c.name}_weight")
        if c.levels and c.levels[0].tf:
            cols.append(f"s.w_tf_{c.name} AS {c.name}_tf_weight")
    body = ",\n               ".join(cols)
    return frame(con, f"""
        SELECT l.handle AS caf_handle, r.handle AS cpam_handle,
               coalesce(k.pass, 'revue') AS pass, s.w AS match_weight,
               {body}
        FROM all_scored s
        JOIN caf_handles l ON l.id = s.lid
        JOIN cpam_handles r ON r.id = s.rid
        LEFT JOIN links k ON k.lid = s.lid AND k.rid = s.rid
    """)


def _weight_names(cfg: Config) -> list[str]:
    names = []
    for c in cfg.comparisons:
        names.append(c.name)
        if c.levels and c.levels[0].tf:
            names.append(f"tf_{c.name}")
    return names
