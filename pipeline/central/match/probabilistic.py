"""Fellegi–Sunter step on the engine: blocking, agreement levels, u, EM, scoring, one-to-one.

Only aggregates leave the engine for Python: per-rule pair counts, per-level counts of the random
sample, and the (pattern, count) table EM runs on. Pairs themselves stay in engine tables, so
the step runs out of core (DuckDB) or distributed (Spark) on large files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from pipeline.central.engines.base import Engine, Table
from pipeline.central.match.db import counts_by, render, run, union_all
from pipeline.central.match.model import (
    EMResult,
    level_weights,
    prior_weight,
    run_em,
    u_from_counts,
)
from pipeline.shared.linkage_model import Comparison, Config

TF_FLOOR = 1e-7  # lowest term frequency used in an adjustment (bounds a single token's weight)


@dataclass
class FittedModel:
    m: list[np.ndarray]
    u: list[np.ndarray]
    weights: list[np.ndarray]
    lam: float  # prior: probability that two random residual records match
    prior: float  # log2 prior odds
    em: EMResult | None


# ---------------------------------------------------------------- blocking


def blocking(engine: Engine, config: Config, caf_free: Table,
             cpam_free: Table) -> tuple[Table, list[dict[str, object]]]:
    """Candidate pairs = union of the blocking rules; table `cand(lid, rid, first_rule)`."""
    parts = [
        render(engine, "blocking", rule_no=i, name=b.name, on=b.on,
               on_text=" ".join(b.on.split()), caf_free=caf_free, cpam_free=cpam_free)
        for i, b in enumerate(config.blocking_rules)
    ]
    cand_all = engine.create("cand_all", "\nUNION ALL\n".join(parts))
    per_rule = counts_by(engine, cand_all, "rule_no")
    cand = run(engine, "candidates", "cand", pairs=cand_all)
    new_per_rule = counts_by(engine, cand, "first_rule")
    engine.drop(cand_all)
    return cand, [
        {"rule": b.name, "on": " ".join(b.on.split()), "pairs": int(per_rule.get(i, 0)),
         "new_pairs": int(new_per_rule.get(i, 0))}
        for i, b in enumerate(config.blocking_rules)
    ]


# ---------------------------------------------------------------- agreement levels


def gamma_case(c: Comparison) -> str:
    whens = "\n".join(
        f"        WHEN {lv.when} THEN {c.level_index(i)}" for i, lv in enumerate(c.levels)
    )

    return (f"    CAST(CASE\n        WHEN {c.null} THEN -1\n{whens}\n        ELSE 0\n"
            f"    END AS TINYINT) AS g_{c.name}")


def compute_gammas(engine: Engine, config: Config, pairs: Table, target: str, caf: Table,
                   cpam: Table) -> Table:
    """Agreement levels for every pair of table `pairs` into table `target`."""
    return engine.create(target, gamma_sql(engine, config, pairs, caf, cpam))


def gamma_sql(engine: Engine, config: Config, pairs: Table, caf: Table, cpam: Table) -> str:
    """The SELECT of the agreement levels of the pairs of table `pairs` (gamma.sql)."""
    gammas = ",\n".join(gamma_case(c) for c in config.comparisons)
    tf_cols = "".join(
        f",\n    l.{lv.tf} AS tfv_{c.name}"
        for c in config.comparisons for lv in c.levels[:1] if lv.tf
    )
    return render(engine, "gamma", pairs=pairs, gammas=gammas + tf_cols, caf=caf, cpam=cpam)


# ---------------------------------------------------------------- u from random pairs


def sample_random_pairs(engine: Engine, n_l: int, n_r: int, n_pairs: int,
                        seed: int) -> tuple[Table, int]:
    """Seeded random CAF x CPAM pairs (all records) into table `rand_pairs`."""
    n = int(min(n_pairs, n_l * n_r))
    rng = np.random.default_rng(seed)
    empty = np.zeros(0, dtype=np.int32)
    pairs = pl.DataFrame({
        "lid": rng.integers(0, n_l, n, dtype=np.int32) if n else empty,
        "rid": rng.integers(0, n_r, n, dtype=np.int32) if n else empty,
    })
    return engine.load_frame("rand_pairs", pairs), n


def level_counts(engine: Engine, config: Config, table: Table | str) -> list[np.ndarray]:
    """Per comparison, counts of each level >= 0 in `table` (nulls left out).

    Summed from the table's agreement patterns (one query, a few hundred rows) rather than one
    query per comparison: the same integers, fewer passes over the pairs."""
    patterns, counts = pattern_counts(engine, config, table)
    out = []
    for k, c in enumerate(config.comparisons):
        g = patterns[:, k]
        valid = g >= 0
        out.append(np.bincount(g[valid], weights=counts[valid], minlength=c.n_levels)
                   .astype(np.int64))
    return out


def pattern_counts(engine: Engine, config: Config,
                   table: Table | str) -> tuple[np.ndarray, np.ndarray]:
    """Distinct agreement patterns of `table` (a table, or a subquery with its alias) and their
    counts (what EM runs on)."""
    cols = ", ".join(f"g_{c.name}" for c in config.comparisons)
    rows = engine.rows(render(engine, "patterns", columns=cols, table=table))
    if not rows:
        return np.zeros((0, len(config.comparisons)), dtype=np.int64), np.zeros(0)
    arr = np.asarray(rows, dtype=np.int64)
    return arr[:, :-1], arr[:, -1].astype(float)


# ---------------------------------------------------------------- term frequencies


def build_term_frequencies(engine: Engine, config: Config, caf: Table,
                           cpam: Table) -> dict[str, Table]:
    """Frequency of each value of the tf tokens, over both files.

    Privacy: these are frequencies of salted tokens the central side already holds in the two
    exports; computing them reveals nothing it could not compute itself, and no frequency table
    is written to any output (only the per-link adjustment, a number, in link_explanations).
    The frequency-attack risk lies in the exports themselves and is measured by the
    pseudonymisation's leakage scan, not here.
    """
    return {tok: run(engine, "term_frequencies", f"tf_{tok}", token=tok, caf=caf, cpam=cpam)
            for tok in sorted({lv.tf for c in config.comparisons for lv in c.levels if lv.tf})}


# ---------------------------------------------------------------- fitting


def m_prior(engine: Engine, config: Config, table: Table) -> list[np.ndarray] | None:
    """Prior counts for m: level counts among pairs the identifier (NIR) pass linked, scaled.

    The NIR pass does not look at names, so its links show how often true pairs disagree on
    each field (birth date only up to its consistency check). Scaled to `em_m_prior_pairs`
    pseudo-pairs per comparison; None when fewer than 20 such links exist.
    """
    counts = level_counts(engine, config, table)
    if min(int(c.sum()) for c in counts) < 20:
        return None
    strength = config.em_m_prior_pairs
    return [c / c.sum() * strength for c in counts]


def fit(engine: Engine, config: Config, lam: float, cand_gamma: Table,
        n_candidates: int, n_left: int, n_right: int,
        sides: tuple[Table, Table, int, int],
        m_prior_counts: list[np.ndarray] | None = None,
        ) -> tuple[FittedModel, dict[str, object]]:
    """u from random pairs, then m (and the in-block match share) by EM on candidate patterns.

    `sides` = (caf, cpam, their row counts): the random pairs are drawn among all records."""
    caf, cpam, n_l, n_r = sides
    rand_pairs, n_sample = sample_random_pairs(engine, n_l, n_r, config.u_sample_pairs,
                                               config.seed)
    # Only their level counts are read: the random pairs' levels are aggregated as they are
    # computed (a subquery), never stored (at 1 M pairs, 0.1 s and 10 MB less).
    rand_gamma = f"(\n{gamma_sql(engine, config, rand_pairs, caf, cpam)}\n) AS rand_gamma"
    u = u_from_counts(level_counts(engine, config, rand_gamma))
    engine.drop(rand_pairs)
    patterns, counts = pattern_counts(engine, config, cand_gamma)
    n_levels = [c.n_levels for c in config.comparisons]
    em = None
    if len(counts):
        expected_matches = lam * n_left * n_right
        lam_block = min(max(expected_matches / max(n_candidates, 1), 1e-6), 0.5)
        m_init = None if m_prior_counts is None else [c / c.sum() for c in m_prior_counts]
        em = run_em(patterns, counts, n_levels, u=u, fix_u=False, lam_init=lam_block,
                    m_init=m_init,
                    m_prior_counts=m_prior_counts,
                    max_iterations=config.em_max_iterations, tolerance=config.em_tolerance)
        m = em.m
    else:  # nothing left to link probabilistically: keep a neutral model for explanations
        m = [np.asarray(x) for x in u]
    weights = level_weights(m, u)
    model = FittedModel(m=m, u=u, weights=weights, lam=lam, prior=prior_weight(lam), em=em)
    facts = {"u_sample_pairs": n_sample, "patterns": len(counts),
             "em_iterations": em.iterations if em else 0,
             "em_converged": em.converged if em else None,
             "em_in_block_match_share": em.lam if em else None,
             "em_in_block_expected_matches": em.lam * n_candidates if em else None,
             "em_m_prior": ("nir_links" if m_prior_counts is not None else "none"),
             "em_m_prior_pairs": config.em_m_prior_pairs if m_prior_counts is not None else 0}
    return model, facts


# ---------------------------------------------------------------- scoring


def _lit(x: float) -> str:
    return repr(float(x))


def weight_expressions(config: Config, model: FittedModel) -> dict[str, str]:
    """SQL expression per comparison: its level weight (+ term-frequency adjustment)."""
    exprs: dict[str, str] = {}
    for k, c in enumerate(config.comparisons):
        cases = " ".join(f"WHEN {g} THEN {_lit(model.weights[k][g])}" for g in range(c.n_levels))
        exprs[c.name] = f"(CASE g_{c.name} {cases} ELSE 0.0 END)"
        top = c.levels[0] if c.levels else None
        if top is not None and top.tf:
            g_top = c.n_levels - 1
            u_top = float(model.u[k][g_top])
            exprs[f"tf_{c.name}"] = (
                f"(CASE WHEN g_{c.name} = {g_top} THEN "
                f"log2({_lit(u_top)} / greatest(coalesce(tf_{c.name}.f, {_lit(u_top)}), "
                f"{_lit(TF_FLOOR)})) ELSE 0.0 END)"
            )
    return exprs


def score(engine: Engine, config: Config, model: FittedModel, source: Table, target: str,
          tf_tables: dict[str, Table]) -> Table:
    """Per pair: each component's weight, the total match weight and probability."""
    exprs = weight_expressions(config, model)
    tf_joins = "".join(
        f"\nLEFT JOIN {tf_tables[c.levels[0].tf]} AS tf_{c.name} ON tf_{c.name}.v = s.tfv_{c.name}"
        for c in config.comparisons if c.levels and c.levels[0].tf
    )
    comps = ",\n    ".join(f"{e} AS w_{name}" for name, e in exprs.items())
    total = " + ".join(f"w_{name}" for name in exprs)
    return run(engine, "score", target, prior=_lit(model.prior), total=total, components=comps,
               source=source, tf_joins=tf_joins)


# ---------------------------------------------------------------- one-to-one


def assign_one_to_one(engine: Engine, source: Table, min_weight: float,
                      max_rounds: int = 10_000, prefix: str = "assign") -> tuple[Table, int]:
    """Greedy one-to-one over pairs of `source` with w >= min_weight: view `assigned`.

    Each round's choices are a table of their own and the pairs left a new table (no in-place
    DELETE); `assigned` is the view of every round's choices."""
    left = run(engine, "assign_candidates", f"{prefix}_left_0", source=source,
               min_weight=_lit(min_weight))
    chosen: list[Table] = []
    rounds = 0
    while rounds < max_rounds and engine.count(left):
        best = run(engine, "assign_best", f"{prefix}_best_{rounds}", left=left)
        rest = run(engine, "assign_rest", f"{prefix}_left_{rounds + 1}", left=left, best=best)
        engine.drop(left)
        chosen.append(best)
        left = rest
        rounds += 1
    if chosen:
        engine.drop(left)
    else:  # nothing at or above the review weight: the (empty) pairs left are the assignment
        chosen.append(left)
    return union_all(engine, "assigned" if prefix == "assign" else f"{prefix}ed", chosen), rounds


def histogram(engine: Engine, table: Table) -> list[dict[str, float]]:
    """Match-weight histogram of the scored candidate pairs: contiguous one-bit bins, min..max."""
    rows = engine.rows(render(engine, "weight_histogram", scored=table))
    if not rows:
        return []
    counts = {int(b): int(k) for b, k in rows}
    lo, hi = min(counts), max(counts)
    return [{"from": b, "to": b + 1, "pairs": counts.get(b, 0)} for b in range(lo, hi + 1)]
