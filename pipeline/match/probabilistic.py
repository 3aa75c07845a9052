"""Fellegi–Sunter step in DuckDB: blocking, agreement levels, u, EM, scoring, one-to-one.

Only aggregates leave DuckDB for Python: per-rule pair counts, per-level counts of the random
sample, and the (pattern, count) table EM runs on. Pairs themselves stay in DuckDB tables, so
the step runs out of core on large files.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from pipeline.match.config import Comparison, Config
from pipeline.match.db import sql_template
from pipeline.match.model import (
    EMResult,
    level_weights,
    prior_weight,
    run_em,
    u_from_counts,
)

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


def blocking(con: duckdb.DuckDBPyConnection, config: Config) -> list[dict[str, object]]:
    """Candidate pairs = union of the blocking rules; table `cand(lid, rid, first_rule)`."""
    parts = [
        sql_template("blocking").format(rule_no=i, name=b.name, on=b.on,
                                        on_text=" ".join(b.on.split()))
        for i, b in enumerate(config.blocking_rules)
    ]
    con.execute("CREATE OR REPLACE TEMP TABLE cand_all AS\n" + "\nUNION ALL\n".join(parts))
    per_rule = dict(con.execute(
        "SELECT rule_no, count(*) FROM cand_all GROUP BY rule_no"
    ).fetchall())
    con.execute("""
        CREATE OR REPLACE TEMP TABLE cand AS
        SELECT lid, rid, min(rule_no) AS first_rule
        FROM cand_all
        GROUP BY lid, rid
    """)
    new_per_rule = dict(con.execute(
        "SELECT first_rule, count(*) FROM cand GROUP BY first_rule"
    ).fetchall())
    con.execute("DROP TABLE cand_all")
    return [
        {"rule": b.name, "on": " ".join(b.on.split()), "pairs": int(per_rule.get(i, 0)),
         "new_pairs": int(new_per_rule.get(i, 0))}
        for i, b in enumerate(config.blocking_rules)
    ]


# ---------------------------------------------------------------- agreement levels


def gamma_case(c: Comparison) -> str:
    whens = "\n".join(
        f"        WHEN {lv.when} THEN {c.level_index(i)}" for i, lv in enumerate(c.levels)
    )

    return (f"    (CASE\n        WHEN {c.null} THEN -1\n{whens}\n        ELSE 0\n"
            f"    END)::TINYINT AS g_{c.name}")


def compute_gammas(con: duckdb.DuckDBPyConnection, config: Config, pairs: str, target: str,
                   extra: str = "") -> None:
    """Agreement levels for every pair of table `pairs` into table `target`."""
    gammas = ",\n".join(gamma_case(c) for c in config.comparisons)
    tf_cols = "".join(
        f",\n    l.{lv.tf} AS tfv_{c.name}"
        for c in config.comparisons for lv in c.levels[:1] if lv.tf
    )
    con.execute(sql_template("gamma").format(
        target=target, pairs=pairs, gammas=gammas + tf_cols + extra))


# ---------------------------------------------------------------- u from random pairs


def sample_random_pairs(con: duckdb.DuckDBPyConnection, n_pairs: int, seed: int) -> int:
    """Seeded random CAF x CPAM pairs (all records) into table `rand_pairs`."""
    n_l = con.execute("SELECT count(*) FROM caf").fetchall()[0][0]
    n_r = con.execute("SELECT count(*) FROM cpam").fetchall()[0][0]
    n = int(min(n_pairs, n_l * n_r))
    rng = np.random.default_rng(seed)
    empty = np.zeros(0, dtype=np.int32)
    pairs = pa.table({
        "lid": pa.array(rng.integers(0, n_l, n, dtype=np.int32) if n else empty),
        "rid": pa.array(rng.integers(0, n_r, n, dtype=np.int32) if n else empty),
    })
    con.register("rand_pairs_arrow", pairs)
    con.execute("CREATE OR REPLACE TEMP TABLE rand_pairs AS SELECT * FROM rand_pairs_arrow")
    con.unregister("rand_pairs_arrow")
    return n


def level_counts(con: duckdb.DuckDBPyConnection, config: Config, table: str) -> list[np.ndarray]:
    """Per comparison, counts of each level >= 0 in `table` (nulls left out)."""
    out = []
    for c in config.comparisons:
        rows = con.execute(
            f"SELECT g_{c.name}, count(*) FROM {table} WHERE g_{c.name} >= 0 GROUP BY 1"
        ).fetchall()
        arr = np.zeros(c.n_levels, dtype=np.int64)
        for g, k in rows:
            arr[int(g)] = int(k)
        out.append(arr)
    return out


def pattern_counts(con: duckdb.DuckDBPyConnection, config: Config,
                   table: str) -> tuple[np.ndarray, np.ndarray]:
    """Distinct agreement patterns of `table` and their counts (what EM runs on)."""
    cols = ", ".join(f"g_{c.name}" for c in config.comparisons)
    rows = con.execute(
        f"SELECT {cols}, count(*) FROM {table} GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    if not rows:
        return np.zeros((0, len(config.comparisons)), dtype=np.int64), np.zeros(0)
    arr = np.asarray(rows, dtype=np.int64)
    return arr[:, :-1], arr[:, -1].astype(float)


# ---------------------------------------------------------------- term frequencies


def build_term_frequencies(con: duckdb.DuckDBPyConnection, config: Config) -> list[str]:
    """Frequency of each value of the tf tokens, over both files.

    Privacy: these are frequencies of salted tokens the central side already holds in the two
    exports; computing them reveals nothing it could not compute itself, and no frequency table
    is written to any output (only the per-link adjustment, a number, in link_explanations).
    The frequency-attack risk lies in the exports themselves and is measured by the
    pseudonymisation's leakage scan, not here.
    """
    made = []
    for tok in sorted({lv.tf for c in config.comparisons for lv in c.levels if lv.tf}):
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE tf_{tok} AS
            SELECT v, count(*)::DOUBLE / sum(count(*)) OVER () AS f
            FROM (SELECT {tok} AS v FROM caf UNION ALL SELECT {tok} AS v FROM cpam)
            WHERE v IS NOT NULL
            GROUP BY v
        """)
        made.append(tok)
    return made


# ---------------------------------------------------------------- fitting


def m_prior(con: duckdb.DuckDBPyConnection, config: Config,
            table: str) -> list[np.ndarray] | None:
    """Prior counts for m: level counts among pairs the identifier (NIR) pass linked, scaled.

    The NIR pass does not look at names, so its links show how often true pairs disagree on
    each field (birth date only up to its consistency check). Scaled to `em_m_prior_pairs`
    pseudo-pairs per comparison; None when fewer than 20 such links exist.
    """
    counts = level_counts(con, config, table)
    if min(int(c.sum()) for c in counts) < 20:
        return None
    strength = config.em_m_prior_pairs
    return [c / c.sum() * strength for c in counts]


def fit(con: duckdb.DuckDBPyConnection, config: Config, lam: float,
        n_candidates: int, n_left: int, n_right: int,
        m_prior_counts: list[np.ndarray] | None = None,
        ) -> tuple[FittedModel, dict[str, object]]:
    """u from random pairs, then m (and the in-block match share) by EM on candidate patterns."""
    n_sample = sample_random_pairs(con, config.u_sample_pairs, config.seed)
    compute_gammas(con, config, "rand_pairs", "rand_gamma")
    u = u_from_counts(level_counts(con, config, "rand_gamma"))
    con.execute("DROP TABLE rand_gamma")
    con.execute("DROP TABLE rand_pairs")
    patterns, counts = pattern_counts(con, config, "cand_gamma")
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


def score(con: duckdb.DuckDBPyConnection, config: Config, model: FittedModel, source: str,
          target: str) -> None:
    """Per pair: each component's weight, the total match weight and probability."""
    exprs = weight_expressions(config, model)
    tf_joins = "".join(
        f"\nLEFT JOIN tf_{c.levels[0].tf} AS tf_{c.name} ON tf_{c.name}.v = s.tfv_{c.name}"
        for c in config.comparisons if c.levels and c.levels[0].tf
    )
    comps = ",\n    ".join(f"{e} AS w_{name}" for name, e in exprs.items())
    total = " + ".join(f"w_{name}" for name in exprs)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT *, {_lit(model.prior)} + {total} AS w,
               1.0 / (1.0 + pow(2.0, -({_lit(model.prior)} + {total}))) AS p
        FROM (
            SELECT s.*,
            {comps}
            FROM {source} AS s{tf_joins}
        )
    """)


# ---------------------------------------------------------------- one-to-one


def assign_one_to_one(con: duckdb.DuckDBPyConnection, source: str, min_weight: float,
                      max_rounds: int = 10_000) -> int:
    """Greedy one-to-one over pairs of `source` with w >= min_weight into table `assigned`."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE assign_left AS
        SELECT lid, rid, w FROM {source} WHERE w >= {_lit(min_weight)}
    """)
    con.execute("CREATE OR REPLACE TEMP TABLE assigned (lid INTEGER, rid INTEGER, w DOUBLE)")
    rounds = 0
    round_sql = sql_template("assign_round")
    while con.execute("SELECT count(*) FROM assign_left").fetchall()[0][0] and rounds < max_rounds:
        con.execute(round_sql)
        rounds += 1
    return rounds


def histogram(con: duckdb.DuckDBPyConnection, table: str) -> list[dict[str, float]]:
    """Match-weight histogram of the scored candidate pairs: contiguous one-bit bins, min..max."""
    rows = con.execute(
        f"SELECT floor(w)::INTEGER AS b, count(*) FROM {table} "
        "WHERE w IS NOT NULL AND NOT isnan(w) GROUP BY b ORDER BY b"
    ).fetchall()
    if not rows:
        return []
    counts = {int(b): int(k) for b, k in rows}
    lo, hi = min(counts), max(counts)
    return [{"from": b, "to": b + 1, "pairs": counts.get(b, 0)} for b in range(lo, hi + 1)]
