"""Facts an auditor drills into: single links, the clerical band, totals that reconcile.

Built from the central run's own tables (link_explanations.parquet, clerical_review.parquet,
targets.parquet) and stats files; pipeline/central/facts.py calls these. Nothing here carries a
handle: a pair is named by a short reference, the first 12 hex digits of
SHA-256("<caf_handle>|<cpam_handle>"), which the operator can recompute to find the pair in
link_explanations.parquet. Household counts go through the report's small-cell rule when shown.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import polars as pl

SAMPLE_PER_PASS = 3  # lowest, median and highest match weight of each pass
REF_DIGITS = 12


def _levels(model: dict[str, Any]) -> dict[str, tuple[str, dict[str, str]]]:
    """comparison id -> (label, {level id -> level label})."""
    return {
        str(c.get("comparison")): (
            str(c.get("label") or c.get("comparison")),
            {str(lv.get("level")): str(lv.get("label") or lv.get("level"))
             for lv in c.get("levels", [])},
        )
        for c in model.get("comparisons", [])
    }


def pair_ref(caf_handle: str, cpam_handle: str) -> str:
    import hashlib

    return hashlib.sha256(f"{caf_handle}|{cpam_handle}".encode()).hexdigest()[:REF_DIGITS]


def _weights(frame: pl.DataFrame) -> pl.DataFrame:
    """Float weights (the explanations store some as decimals); nulls as zero contributions."""
    cols = [c for c in frame.columns if c.endswith("_weight")]
    return frame.with_columns(pl.col(c).cast(pl.Float64).fill_null(0.0) for c in cols)


def _pair(row: dict[str, Any], comps: dict) -> dict[str, Any]:
    steps = []
    for cid, (label, levels) in comps.items():
        if f"{cid}_weight" not in row:
            continue
        level = row.get(f"{cid}_level")
        steps.append({
            "comparison": label,
            "level": levels.get(str(level), "valeur absente" if level in (None, "null")
                                else str(level)),
            "weight": row[f"{cid}_weight"],
            "tf_weight": row.get(f"{cid}_tf_weight"),
        })
    return {"ref": pair_ref(row["caf_handle"], row["cpam_handle"]), "pass": row["pass"],
            "prior": row["prior_weight"], "match_weight": row["match_weight"], "steps": steps}


def waterfalls(explanations: Path, clerical: Path, model: dict[str, Any]) -> dict[str, Any]:
    """A deterministic sample of links per pass and every clerical-band pair, as waterfalls."""
    if not Path(explanations).is_file():
        return {}
    comps = _levels(model)
    expl = _weights(pl.read_parquet(explanations))
    review = (pl.read_parquet(clerical).select("caf_handle", "cpam_handle")
              if Path(clerical).is_file() else expl.clear().select("caf_handle", "cpam_handle"))
    in_review = expl.join(review, on=["caf_handle", "cpam_handle"], how="semi")
    links = expl.join(review, on=["caf_handle", "cpam_handle"], how="anti")
    order = ["pass", "match_weight", "caf_handle", "cpam_handle"]
    ranked = links.sort(order).with_columns(
        rank=pl.int_range(pl.len()).over("pass"), n=pl.len().over("pass"))
    picked = ranked.filter(
        (pl.col("rank") == 0) | (pl.col("rank") == pl.col("n") // 2)
        | (pl.col("rank") == pl.col("n") - 1)
    ).sort(order)
    review_rows = in_review.sort(["match_weight", "caf_handle", "cpam_handle"],
                                 descending=[True, False, False])
    return {
        "sample": [_pair(r, comps) for r in picked.iter_rows(named=True)],
        "clerical": [_pair(r, comps) for r in review_rows.iter_rows(named=True)],
        "by_pass": weight_histograms(links),
    }


def weight_histograms(links: pl.DataFrame) -> dict[str, dict[str, list]]:
    """Match-weight counts per pass on unit bins shared by every pass (comparable shapes)."""
    if links.is_empty():
        return {}
    lo = math.floor(float(links["match_weight"].min()))
    hi = math.floor(float(links["match_weight"].max())) + 1
    bins = list(range(lo, hi + 1))
    counts = (links.group_by("pass", pl.col("match_weight").floor().cast(pl.Int64).alias("b"))
              .len())
    out = {}
    for p in links["pass"].unique().sort().to_list():
        sub = dict(counts.filter(pl.col("pass") == p).select("b", "len").iter_rows())
        out[str(p)] = {"bins": bins, "counts": [int(sub.get(b, 0)) for b in bins[:-1]]}
    return out


def model_facts(stats: dict[str, Any]) -> dict[str, Any]:
    """Blocking rules with their pair counts, EM convergence and the prior, from link_stats."""
    model = stats.get("model", {})
    prior = model.get("prior", {})
    blocking = stats.get("blocking") or {}
    prob = (stats.get("funnel") or {}).get("probabilistic") or {}
    return {
        "blocking_rules": [
            {"rule": r.get("rule"), "on": r.get("on"), "pairs": r.get("pairs"),
             "new_pairs": r.get("new_pairs")} for r in blocking.get("rules", [])],
        "blocking_candidates": blocking.get("candidate_pairs"),
        "em": {
            "iterations": model.get("em_iterations"),
            "converged": model.get("em_converged"),
            "in_block_match_share": model.get("em_in_block_match_share"),
            "in_block_expected_matches": model.get("em_in_block_expected_matches"),
            "m_prior": model.get("em_m_prior"),
            "u_sample_pairs": model.get("u_sample_pairs"),
            "patterns": model.get("patterns"),
        },
        "prior_weight": prior.get("prior_weight"),
        "deterministic_links": prior.get("deterministic_links"),
        "deterministic_recall_assumed": prior.get("deterministic_recall_assumed"),
        "records_left": {"caf": prob.get("caf_records_left"),
                         "cpam": prob.get("cpam_records_left")},
        "passes": [{"pass": p.get("pass"), "label": p.get("label"),
                    "candidates": p.get("candidate_pairs"), "linked": p.get("linked"),
                    "tie_break": p.get("linked_by_tie_break"),
                    "ambiguous": (p.get("ambiguous_caf") or 0) + (p.get("ambiguous_cpam") or 0)}
                   for p in (stats.get("funnel") or {}).get("passes", [])],
        "tf_adjusted": [str(c.get("label") or c.get("comparison"))
                        for c in model.get("comparisons", []) if c.get("tf_adjusted")],
    }


def reconciliation(targets: Path, detect_stats: dict[str, Any]) -> dict[str, Any]:
    """The figures the console, the report, the lists and the rule table each show, tied."""
    if not Path(targets).is_file():
        return {}
    t = pl.read_parquet(targets, columns=["agence", "foyer", "liste", "regles"])
    by = {(a, li): n for a, li, n in t.group_by("agence", "liste").len().iter_rows()}
    rules = t.select("liste", pl.col("regles").list.len().alias("k"))
    return {
        "rows": t.height,
        "households": t.select(pl.struct("agence", "foyer").n_unique()).item(),
        "by_agency_list": [{"agency": a, "list": li, "households": n}
                           for (a, li), n in sorted(by.items())],
        "rule_rows": {li: int(rules.filter(pl.col("liste") == li)["k"].sum())
                      for li in sorted(set(rules["liste"].to_list()))},
        "multi_rule": {li: int(rules.filter((pl.col("liste") == li) & (pl.col("k") > 1))
                               .height) for li in sorted(set(rules["liste"].to_list()))},
        "console_total": (detect_stats.get("cibles") or {}).get("total"),
    }
