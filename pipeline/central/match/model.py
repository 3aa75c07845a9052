"""Fellegi–Sunter parameters: u from random pairs, m (and λ) by EM on aggregated patterns.

EM never sees a pair: it runs on the table of distinct agreement patterns and their counts
(`GROUP BY` the gamma columns in DuckDB). The number of distinct patterns is bounded by the
product of the level counts (a few hundred), so EM costs the same for a thousand pairs or a
billion. Gamma = -1 means "not comparable" (a token is null): that comparison is left out of the
pattern's likelihood (Bayes factor 1), as in Splink.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PROB_FLOOR = 1e-9
# Pseudo-count added to every level in the M-step (a Dirichlet prior): on small files it keeps an
# unseen level from getting m = 0 (an infinite penalty); on large files it is negligible.
PSEUDO_COUNT = 0.5


@dataclass
class EMResult:
    m: list[np.ndarray]
    u: list[np.ndarray]
    lam: float
    iterations: int
    converged: bool
    history: list[float] = field(default_factory=list)  # λ per iteration, for the stats


def u_from_counts(level_counts: list[np.ndarray]) -> list[np.ndarray]:
    """u per level from random-pair counts (nulls excluded), add-one smoothed.

    Smoothing keeps a top level that never agreed in the sample from getting u = 0 (an infinite
    weight); with a million sampled pairs the bias is below 1e-6.
    """
    return [(c.astype(float) + 1.0) / (c.sum() + len(c)) for c in level_counts]


def _log_likelihood(patterns: np.ndarray, probs: list[np.ndarray]) -> np.ndarray:
    """Sum over comparisons of log P(level | class); null levels contribute 0."""
    out = np.zeros(patterns.shape[0])
    for k, p in enumerate(probs):
        g = patterns[:, k]
        valid = g >= 0
        out[valid] += np.log(np.maximum(p[g[valid]], PROB_FLOOR))
    return out


def _reestimate(patterns: np.ndarray, weights: np.ndarray, n_levels: list[int],
                pseudo_count: float,
                prior_counts: list[np.ndarray] | None = None) -> list[np.ndarray]:
    probs = []
    for k, n in enumerate(n_levels):
        g = patterns[:, k]
        valid = g >= 0
        num = np.bincount(g[valid], weights=weights[valid], minlength=n) + pseudo_count
        if prior_counts is not None:
            num = num + prior_counts[k]
        den = num.sum()
        p = num / den if den > 0 else np.full(n, 1.0 / n)
        p = np.maximum(p, PROB_FLOOR)
        probs.append(p / p.sum())
    return probs


def initial_m(n_levels: list[int]) -> list[np.ndarray]:
    """Start with most mass on the top level (matches mostly agree), decreasing geometrically."""
    out = []
    for n in n_levels:
        p = 0.5 ** np.arange(n)[::-1] * 4.0 ** np.arange(n)  # rising towards the top level
        out.append(p / p.sum())
    return out


def run_em(
    patterns: np.ndarray,
    counts: np.ndarray,
    n_levels: list[int],
    *,
    u: list[np.ndarray] | None = None,
    fix_u: bool = True,
    m_init: list[np.ndarray] | None = None,
    lam_init: float = 0.1,
    max_iterations: int = 200,
    tolerance: float = 1e-6,
    pseudo_count: float = PSEUDO_COUNT,
    m_prior_counts: list[np.ndarray] | None = None,
) -> EMResult:
    """EM for the two-class mixture on (pattern, count) rows.

    With `u` given and `fix_u`, u stays fixed; with `fix_u=False` it is the starting u and EM
    re-estimates it (the classic ECM, checked against recordlinkage's ECMClassifier). The engine
    uses the latter on blocked candidates: every candidate agrees on its blocking key, so the u of
    random pairs is far too small *inside* the blocks and a fixed-u EM calls every candidate a
    match. The in-block u is a nuisance parameter; scoring uses EM's m with the random-pair u,
    as Splink does.

    `m_prior_counts` (per comparison, per level) are added to the match-class counts of every
    M-step: a Dirichlet prior on m (MAP-EM). The engine passes the level counts of pairs the NIR
    pass linked, scaled to a fixed strength, so that a small residual (a few dozen true pairs
    among candidates) cannot drag m to "everything that agrees on anything is a match", while
    a large residual still dominates the estimate.
    """
    patterns = np.asarray(patterns, dtype=np.int64)
    counts = np.asarray(counts, dtype=float)
    fix_u = fix_u and u is not None
    m = [p.copy() for p in (m_init or initial_m(n_levels))]
    if u is not None:
        u_cur = [np.asarray(p, dtype=float) for p in u]
    else:
        u_cur = [np.linspace(2.0, 1.0, n) / np.linspace(2.0, 1.0, n).sum() for n in n_levels]
    lam = float(np.clip(lam_init, 1e-9, 1 - 1e-9))
    history: list[float] = []
    converged = False
    it = 0
    log_u = _log_likelihood(patterns, u_cur)
    for it in range(1, max_iterations + 1):  # noqa: B007 (iteration count is reported)
        log_m = _log_likelihood(patterns, m)
        if not fix_u:
            log_u = _log_likelihood(patterns, u_cur)
        a = np.log(lam) + log_m
        b = np.log1p(-lam) + log_u
        post = 1.0 / (1.0 + np.exp(np.clip(b - a, -700, 700)))
        w_match = counts * post
        new_m = _reestimate(patterns, w_match, n_levels, pseudo_count, m_prior_counts)
        new_lam = float(np.clip(w_match.sum() / counts.sum(), 1e-12, 1 - 1e-12))
        delta = max(abs(new_lam - lam), *(float(np.abs(x - y).max()) for x, y in zip(new_m, m,
                                                                                      strict=True)))
        if not fix_u:
            new_u = _reestimate(patterns, counts * (1.0 - post), n_levels, pseudo_count)
            delta = max(delta, *(float(np.abs(x - y).max()) for x, y in zip(new_u, u_cur,
                                                                             strict=True)))
            u_cur = new_u
        m, lam = new_m, new_lam
        history.append(lam)
        if delta < tolerance:
            converged = True
            break
    return EMResult(m=m, u=u_cur, lam=lam, iterations=it, converged=converged, history=history)


def level_weights(m: list[np.ndarray], u: list[np.ndarray]) -> list[np.ndarray]:
    """Bayes factors as log2(m/u) per level (the match weight contributions)."""
    return [np.log2(np.maximum(mi, PROB_FLOOR) / np.maximum(ui, PROB_FLOOR))
            for mi, ui in zip(m, u, strict=True)]


def prior_weight(lam: float) -> float:
    return float(np.log2(lam / (1.0 - lam)))


def probability(weight: np.ndarray | float) -> np.ndarray | float:
    return 1.0 / (1.0 + np.exp2(-np.asarray(weight, dtype=float)))
