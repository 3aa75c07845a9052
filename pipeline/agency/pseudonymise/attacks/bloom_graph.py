"""Graph-matching attack on Bloom filters (Vidanage, Christen, Ranbaduge & Schnell, CIKM 2020).

Method-agnostic: it needs no knowledge of the encoding, only that similar records give similar
filters. The attacker holds a plaintext list overlapping the encoded records (here the agency's
own plaintext of the same records: the worst case; decoys = plaintext records with no filter).
Both sides become similarity graphs (bigram-item Dice on the plaintext, Dice on the filters),
made comparable by mapping every similarity to its quantile among its side's pairs. Round 0
matches nodes on their features (share of neighbours above each quantile, top similarities);
each next round takes the most confident matches as anchors and re-matches every node on the
correlation of its similarities to the anchors (seed and extend). Matching is one-to-one
(Hungarian, scipy's linear_sum_assignment).

Cost O(n^2) memory and time (O(n^3) worst case for the assignment): meant for residue sizes,
at most MAX_NODES filters and MAX_REFERENCE plaintext records (sampled above, and said so).
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.optimize import linear_sum_assignment

from pipeline.agency.pseudonymise.attacks.bloom_items import (
    incidence,
    item_lists,
    scheme_encode,
)

ATTACKER_KEY = b"graph attacker's own key, not the agency's"
HARDENED_FILL = 0.4  # a diffused filter sets about half its bits; a plain CLK far fewer
MAX_NODES = 3000
MAX_REFERENCE = 6000
QUANTILES = (0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999)
TOP = 10
ANCHOR_SHARES = (0.1, 0.25, 0.5, 0.75, 0.9)  # most confident matches kept as anchors, per round
QUANTILE_SAMPLE = 2_000_000


def dice(mat: np.ndarray) -> np.ndarray:
    """(n, n) Dice similarity of 0/1 rows (diagonal set to 0: a node is not its neighbour)."""
    x = mat.astype(np.float32)
    inter = x @ x.T
    w = x.sum(axis=1)
    sim = 2 * inter / np.maximum(w[:, None] + w[None, :], 1)
    np.fill_diagonal(sim, 0)
    return sim


def to_quantiles(sim: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Every off-diagonal similarity as its quantile among the side's pairs (diagonal 1)."""
    n = sim.shape[0]
    iu = np.triu_indices(n, 1)
    vals = sim[iu]
    if vals.size > QUANTILE_SAMPLE:
        vals = rng.choice(vals, QUANTILE_SAMPLE, replace=False)
    ref = np.sort(vals)
    q = (np.searchsorted(ref, sim, side="right") / max(ref.size, 1)).astype(np.float32)
    np.fill_diagonal(q, 1.0)
    return q


def node_features(q: np.ndarray) -> np.ndarray:
    """Per node: share of its neighbours above each quantile, then its TOP quantiles."""
    off = q.copy()
    np.fill_diagonal(off, 0)
    frac = np.stack([(off >= t).mean(axis=1) for t in QUANTILES], axis=1)
    top = -np.sort(-off, axis=1)[:, :TOP]
    return np.hstack([frac, top]).astype(np.float32)


def _distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between rows of a and b, on features standardised jointly."""
    both = np.vstack([a, b])
    mu, sd = both.mean(axis=0), both.std(axis=0) + 1e-9
    a, b = (a - mu) / sd, (b - mu) / sd
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.maximum(d, 0))


def _corr_cost(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 - Pearson correlation between rows of a and rows of b."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    a /= np.linalg.norm(a, axis=1, keepdims=True) + 1e-9
    b /= np.linalg.norm(b, axis=1, keepdims=True) + 1e-9
    return 1 - a @ b.T


def match(q_enc: np.ndarray, q_plain: np.ndarray) -> list[np.ndarray]:
    """Plaintext node matched to each encoded node, after each round."""
    cost = _distance(node_features(q_enc), node_features(q_plain))
    rows, cols = linear_sum_assignment(cost)
    found = np.empty(q_enc.shape[0], dtype=np.int64)
    found[rows] = cols
    rounds = [found.copy()]
    for share in ANCHOR_SHARES:
        conf = cost[np.arange(found.size), found]
        k = max(2, int(share * found.size))
        anchors = np.argsort(conf, kind="stable")[:k]
        cost = _corr_cost(q_enc[:, anchors], q_plain[:, found[anchors]])
        rows, cols = linear_sum_assignment(cost)
        found[rows] = cols
        rounds.append(found.copy())
    return rounds


def plaintext_views(reference: pl.DataFrame, hardened: bool) -> dict[str, np.ndarray]:
    """The attacker's 0/1 views of its plaintext: the bigram / date items themselves
    (method-agnostic), and the public scheme run under its own key (same variant as the
    filters it attacks: their fill shows which)."""
    inc, _ = incidence(item_lists(reference))
    return {"items": inc,
            "schema_cle_attaquant": scheme_encode(reference, ATTACKER_KEY, hardened=hardened)}


def graph_attack(bits: np.ndarray, plain: pl.DataFrame, reference: pl.DataFrame | None = None,
                 truth: np.ndarray | None = None, *, seed: int = 0) -> dict:
    """Share of filters matched to their own plaintext record, per plaintext view and round;
    `reidentifies` is the best of them (chosen with the truth: an upper bound).

    `reference`: the attacker's plaintext list (default `plain`: full overlap); `truth[i]`: the
    index in `reference` of filter i's record (default i)."""
    rng = np.random.default_rng(seed)
    if reference is None:
        reference, truth = plain, np.arange(plain.height)
    n = bits.shape[0]
    enc_rows = np.arange(n)
    sampled = n > MAX_NODES
    if sampled:
        enc_rows = np.sort(rng.choice(n, MAX_NODES, replace=False))
    true_ref = np.asarray(truth)[enc_rows]
    ref_rows = np.arange(reference.height)
    if reference.height > MAX_REFERENCE:  # keep the counterparts, fill with other records
        others = np.setdiff1d(ref_rows, true_ref)
        fill = rng.choice(others, max(MAX_REFERENCE - true_ref.size, 0), replace=False)
        ref_rows = np.sort(np.concatenate([np.unique(true_ref), fill]))
        sampled = True
    where = np.full(reference.height, -1)
    where[ref_rows] = np.arange(ref_rows.size)
    target = where[true_ref]
    enc = bits[enc_rows]
    hardened = bool(enc.mean() > HARDENED_FILL)
    q_enc = to_quantiles(dice(enc), rng)
    out: dict = {"noeuds_chiffres": int(enc_rows.size), "noeuds_clairs": int(ref_rows.size),
                 "echantillonne": bool(sampled), "filtres_diffuses": hardened,
                 "hasard": round(1 / max(ref_rows.size, 1), 6)}
    best = 0.0
    for name, view in plaintext_views(reference[ref_rows], hardened).items():
        rounds = match(q_enc, to_quantiles(dice(view), rng))
        right = [round(float((r == target).mean()), 4) for r in rounds]
        out[name] = {"par_tour": right}
        best = max(best, *right)
    # the best view and round, picked with the truth: an upper bound on what the attacker gets
    # (it would keep the last round of one view, reported beside it)
    out["reidentifies"] = best
    out["reidentifies_dernier_tour_schema"] = out["schema_cle_attaquant"]["par_tour"][-1]
    return out
