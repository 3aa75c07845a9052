"""The central operator's attacks on the residue's Bloom filters, scored against the plaintext.

The operator holds the lanes only (no key); it knows the scheme (Kerckhoffs). Three attacks
from the literature, each run on the unhardened control (where it must find the leak) and on the
hardened encoding (where the targets are judged):

a. Pattern mining (Christen, Ranbaduge, Vatsalan & Schnell 2018-19): bit positions always set
   together are the k positions of one item (a bigram, a labelled year...): from each
   position, greedy intersection with its best partners (`item_groups`) isolates one item's
   positions and rows. A labelled field holds exactly one item per record, so
   its groups are pairwise disjoint and cover the records: greedy disjoint families of groups
   are the candidate fields; the one whose size profile is closest to the public year / month
   / day / sex distribution is named that field, and its groups are named by frequency rank.
   The remaining groups are aligned to name bigrams by frequency rank, and each record's name
   is guessed as the dictionary name of best Dice with its recovered bigrams.
   The frequencies the attacker aligns on are the file's own (oracle: the strongest attacker,
   an upper bound on any public table); the name dictionary is the file's own names plus the
   public first-name table.
b. Hamming weight: the weight of a filter grows with the number of items (name lengths).
c. Graph matching (Vidanage, Christen, Ranbaduge & Schnell, CIKM 2020): bloom_graph.py.

Scores: share of records whose value the attack names right, beside the prior (the modal value
of the file: the best guess without the filters). Costs: pattern mining is one (positions x
positions) product plus one pass per group; the graph attack is O(n^2) and runs on at most
bloom_graph.MAX_NODES records (sampled above, and said so).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pipeline.agency.pseudonymise.attacks import bloom_graph
from pipeline.agency.pseudonymise.attacks.bloom_items import (
    DATE_FIELDS,
    NAME_FIELDS,
    bits_from_lanes,
    incidence,
    item_lists,
)

SHRINK = 0.05  # a partner position may drop at most this share of a group's rows
MAX_STEPS = 64
PEEL_ROUNDS = 3  # positions per group at most (items have far fewer)
MIN_POSITIONS = 2  # a group of two positions is a chance pairing, not an item
MIN_ROWS = 3  # positions set in fewer rows (or in all but fewer) carry no pattern
DISJOINT = 0.02  # two groups overlapping on at most this share of the smaller are disjoint
MIN_COVER = 0.8  # a family of disjoint groups covering this share of records is a field
MAX_PROFILE_L1 = 0.6  # a family further than this from a field's public profile is not it
MAX_SEEDS = 300
WIDTH_SLACK_BELOW = 3  # a group may miss a few of its item's positions (hash collisions)...
WIDTH_SLACK_ABOVE = 2  # ...or hold a position set in all its rows by chance
ROW_CHUNK = 4096


# ------------------------------------------------------------------ a. pattern mining

def _grow(x: np.ndarray, seeds: np.ndarray, at: np.ndarray) -> np.ndarray:
    """(seeds, positions) bool: the position group grown from each seed column (n, s), the
    rows of position `at[s]` it starts from."""
    fx = x.sum(axis=0)
    rows = seeds.astype(np.float32)
    members = np.zeros((seeds.shape[1], x.shape[1]), dtype=bool)
    members[np.arange(at.size), at] = True
    active = np.ones(seeds.shape[1], dtype=bool)
    for step in range(MAX_STEPS):
        if not active.any():
            break
        act = np.flatnonzero(active)
        kept = rows[:, act].sum(axis=0)
        inter = x.T @ rows[:, act]  # (positions, active seeds)
        score = inter * inter / (np.maximum(fx, 1)[:, None] * np.maximum(kept, 1)[None, :])
        score[members[act].T] = -1
        best = score.argmax(axis=0)
        new = inter[best, np.arange(act.size)]
        ok = ((new >= (1 - SHRINK) * kept) | (step == 0)) & (new >= MIN_ROWS)
        take = act[ok]
        rows[:, take] *= x[:, best[ok]]
        members[take, best[ok]] = True
        active[act[~ok]] = False
    return members


def item_groups(bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """((n, g) bool, (g,) int): the rows and the number of positions of each distinct item
    group the mining finds.

    From every position at once (one seed column each): add the position of best Ochiai
    overlap with the rows kept so far (|R & x|^2 / (|R| |x|): a frequent position that merely
    overlaps everything does not win), keep only the rows holding it; the first partner is
    always taken, later ones only while they keep 1 - SHRINK of the rows. Positions of one item
    keep all its rows; any other cuts them to the fill rate: the group stops at the item.
    A position shared by a frequent and a rare item grows into the frequent one; so, as in
    Christen et al.'s iterative mining, each next round seeds every position with only the
    rows its groups found so far do not explain (peeling), and a group's rows are always
    those holding all its positions in the full filters."""
    n = bits.shape[0]
    freq = bits.sum(axis=0)
    live = np.flatnonzero((freq >= MIN_ROWS) & (freq <= n - MIN_ROWS))
    found = np.zeros((n, 0), dtype=bool)
    if live.size == 0:
        return found, np.zeros(0, dtype=np.int64)
    x = bits[:, live].astype(np.float32)
    groups = np.zeros((0, live.size), dtype=bool)
    seeds, at = x.copy(), np.arange(live.size)
    for _ in range(PEEL_ROUNDS):
        members = _grow(x, seeds, at)
        members = members[members.sum(axis=1) > MIN_POSITIONS]
        groups = np.unique(np.vstack([groups, members]), axis=0)
        found = (x @ groups.T.astype(np.float32)) >= groups.sum(axis=1)[None, :] - 0.5
        explained = (found.astype(np.float32) @ groups.astype(np.float32)) > 0
        seeds = x * ~explained
        at = np.flatnonzero(seeds.sum(axis=0) >= MIN_ROWS)
        seeds = seeds[:, at]
        if seeds.shape[1] == 0:
            break
    width = groups.sum(axis=1)
    big = found.sum(axis=0) >= MIN_ROWS
    found, width = found[:, big], width[big]
    if found.shape[1] == 0:
        return found, width
    _, first = np.unique(np.packbits(found, axis=0), axis=1, return_index=True)
    first = np.sort(first)
    return found[:, first], width[first]


def disjoint_families(groups: np.ndarray, candidates: np.ndarray | None = None
                      ) -> list[list[int]]:
    """Greedy families of pairwise disjoint groups covering MIN_COVER of the records, largest
    groups first, among `candidates` (default all); a group joins one family at most. Among all
    groups a field of small items (the birth year at residue sizes) is crowded out by
    name-bigram groups disjoint from it by chance: `name_fields` offers only the groups of the
    field's width."""
    g = groups.shape[1]
    if g == 0:
        return []
    gf = groups.astype(np.float32)
    overlap = gf.T @ gf
    size = np.diag(overlap).copy()
    disjoint = overlap <= DISJOINT * np.minimum(size[:, None], size[None, :])
    np.fill_diagonal(disjoint, False)
    order = np.argsort(-size, kind="stable")
    used = np.zeros(g, dtype=bool) if candidates is None else ~candidates
    families = []
    for seed in [s for s in order if not used[s]][:MAX_SEEDS]:
        if used[seed]:
            continue
        ok = disjoint[seed] & ~used
        members = [int(seed)]
        for h in order:
            if ok[h]:
                members.append(int(h))
                ok &= disjoint[h]
        if len(members) >= 2 and groups[:, members].any(axis=1).mean() >= MIN_COVER:
            families.append(members)
            used[members] = True
    return families


def _profile_l1(sizes: np.ndarray, counts: np.ndarray) -> float:
    """L1 distance between two sorted frequency profiles (shares, zero-padded)."""
    a = np.sort(sizes / max(sizes.sum(), 1))[::-1]
    b = np.sort(counts / max(counts.sum(), 1))[::-1]
    k = max(a.size, b.size)
    return float(np.abs(np.pad(a, (0, k - a.size)) - np.pad(b, (0, k - b.size))).sum())


def public_hashes() -> dict[str, int]:
    """Positions per item of each date / sex field and of the name q-grams (`noms`), from the
    public bloom.yaml (Kerckhoffs)."""
    from pipeline.shared.bloom import PARAMS

    label = {"annee": "naiss_annee", "mois": "naiss_mois", "jour": "naiss_jour", "sexe": "sexe",
             "nom": "noms"}
    return {label[it.label]: it.hashes for it in PARAMS.items if it.label in label}


def name_fields(groups: np.ndarray, width: np.ndarray, plain: pl.DataFrame,
                hashes: dict[str, int]) -> tuple[dict[str, np.ndarray], set[int], list[int]]:
    """Field -> the attacker's guess per record (NaN where none), the groups spent on them,
    and the sizes of the disjoint families considered.

    The scheme says how many positions each field's items set: the groups of about that width
    are the field's candidates; their disjoint families (`disjoint_families`) are matched to the
    field's public profile (the unused family nearest it), and the family's groups named by
    frequency rank."""
    guesses: dict[str, np.ndarray] = {}
    spent: set[int] = set()
    seen: list[int] = []
    for col in ("naiss_mois", "naiss_jour", "naiss_annee", "sexe"):
        if col not in plain.columns or col not in hashes:
            continue
        h = hashes[col]
        cand = (width >= h - WIDTH_SLACK_BELOW) & (width <= h + WIDTH_SLACK_ABOVE)
        cand[list(spent)] = False
        families = disjoint_families(groups, cand)
        seen += [len(f) for f in families]
        if not families:
            continue
        counts = (plain[col].drop_nulls().value_counts(name="n")
                  .sort(["n", col], descending=[True, False]))
        dist = [_profile_l1(groups[:, f].sum(axis=0), counts["n"].to_numpy())
                for f in families]
        best = int(np.argmin(dist))
        if dist[best] > MAX_PROFILE_L1:
            continue
        fam = families[best]
        spent.update(fam)
        ranked = sorted(fam, key=lambda h: -int(groups[:, h].sum()))
        values = counts[col].to_numpy()[:len(ranked)].astype(np.float64)
        member = groups[:, ranked[:values.size]]
        one = member.sum(axis=1) == 1
        guess = np.full(groups.shape[0], np.nan)
        guess[one] = values[member[one].argmax(axis=1)]
        guesses[col] = guess
    return guesses, spent, seen


def _share_and_prior(truth: pl.DataFrame, guess: dict[str, np.ndarray], cols: list[str]
                     ) -> tuple[float, float]:
    """Share of records with every column of `cols` named right; share of the modal value."""
    df = truth.select(cols)
    n = df.height
    if n == 0 or any(c not in guess for c in cols):
        right = 0.0
    else:
        ok = np.ones(n, dtype=bool)
        for c in cols:
            t = df[c].cast(pl.Float64).fill_null(np.nan).to_numpy()
            ok &= guess[c] == t
        right = float(ok.mean())
    modal = df.drop_nulls().group_by(cols).len("n")["n"].max() if df.height else 0
    return round(right, 4), round((modal or 0) / max(n, 1), 4)


def _bigram_incidence(frame: pl.DataFrame) -> tuple[np.ndarray, list[str]]:
    """(rows, bigrams) 0/1 of the padded name bigrams, field labels dropped: the scheme puts
    every name component's q-grams under one label (bloom.yaml)."""
    items = item_lists(frame).list.eval(pl.element().str.slice(2)).list.unique()
    return incidence(items)


def name_attack(groups: np.ndarray, width: np.ndarray, spent: set[int], plain: pl.DataFrame,
                public_names: list[str] | None, name_hashes: int | None) -> dict[str, float]:
    """Groups of a bigram's width aligned to the name bigrams by frequency rank; then, per
    record and field, the dictionary name with the most of its bigrams recovered and the fewest
    missing (frequent names first on ties): share of records whose top guess is right."""
    fields = [c for c in NAME_FIELDS if c in plain.columns]
    inc, vocab = _bigram_incidence(plain.select(fields))
    free = np.ones(groups.shape[1], dtype=bool)
    free[list(spent)] = False
    if name_hashes:
        free &= (width >= name_hashes - WIDTH_SLACK_BELOW) & (
            width <= name_hashes + WIDTH_SLACK_ABOVE)
    free_idx = np.flatnonzero(free)
    if not vocab or free_idx.size == 0:
        return {col: 0.0 for col in fields}
    item_rank = np.argsort(-inc.sum(axis=0), kind="stable")
    group_rank = free_idx[np.argsort(-groups[:, free_idx].sum(axis=0), kind="stable")]
    k = min(group_rank.size, item_rank.size)
    recovered = np.zeros(inc.shape, dtype=np.float32)
    recovered[:, item_rank[:k]] = groups[:, group_rank[:k]]
    pos = {v: i for i, v in enumerate(vocab)}
    has = recovered.sum(axis=1) > 0
    out = {}
    for col in fields:
        truth = plain[col].cast(pl.String)
        extra = public_names if (col == "prenom1" and public_names) else []
        names = pl.concat([truth.drop_nulls(), pl.Series(col, extra, dtype=pl.String)])
        dictionary = names.value_counts(name="n").sort(["n", col], descending=[True, False])
        d_inc, d_vocab = _bigram_incidence(dictionary.select(col))
        d_full = np.zeros((dictionary.height, len(vocab)), dtype=np.float32)
        cols_in = [j for j, v in enumerate(d_vocab) if v in pos]
        d_full[:, [pos[d_vocab[j]] for j in cols_in]] = d_inc[:, cols_in]
        d_size = d_inc.sum(axis=1).astype(np.float32)  # bigrams outside the file: missing
        tie = 1e-3 * np.log1p(dictionary["n"].to_numpy()) / np.log1p(dictionary["n"].max())
        guess = np.empty(recovered.shape[0], dtype=np.int64)
        for lo in range(0, recovered.shape[0], ROW_CHUNK):
            hit = recovered[lo:lo + ROW_CHUNK] @ d_full.T
            score = hit - (d_size[None, :] - hit) + tie[None, :]
            guess[lo:lo + ROW_CHUNK] = np.argmax(score, axis=1)
        named = dictionary[col].gather(guess)
        right = (named == truth).fill_null(False).to_numpy() & has
        out[col] = round(float(right.mean()), 4)
    return out


def pattern_mining(bits: np.ndarray, plain: pl.DataFrame, public_names: list[str] | None,
                   hashes: dict[str, int] | None = None) -> dict:
    """Attack a: groups, fields named, names guessed; scored against the plaintext."""
    hashes = hashes or public_hashes()
    groups, width = item_groups(bits)
    guesses, spent, families = name_fields(groups, width, plain, hashes)
    out: dict = {"groupes_de_positions": int(groups.shape[1]),
                 "familles_disjointes": families,
                 "champs_nommes": sorted(guesses)}
    for col, key in (("naiss_annee", "annee"), ("naiss_mois", "mois"), ("naiss_jour", "jour"),
                     ("sexe", "sexe")):
        if col in plain.columns:
            out[f"{key}_retrouve"], out[f"prior_{key}"] = _share_and_prior(plain, guesses, [col])
    parts = [c for c in ("naiss_annee", "naiss_mois", "naiss_jour") if c in plain.columns]
    out["date_complete_retrouvee"], out["prior_date_complete"] = _share_and_prior(
        plain, guesses, parts)
    names = name_attack(groups, width, spent, plain, public_names, hashes.get("noms"))
    for col, key in (("nom", "noms"), ("prenom1", "prenoms")):
        if col in plain.columns:
            out[f"{key}_retrouves"] = names.get(col, 0.0)
            modal = plain[col].drop_nulls().value_counts(name="n")["n"].max() or 0
            out[f"prior_{key}"] = round(modal / max(plain.height, 1), 4)
    return out


# ------------------------------------------------------------------ b. Hamming weight

def weight_attack(bits: np.ndarray, plain: pl.DataFrame) -> dict:
    """Correlation of the filter's weight with the number of items and the name lengths, and
    the name length read from the weight (a line fitted on half the records, a known-plaintext
    calibration generous to the attacker, applied to the other half) against the prior."""
    w = bits.sum(axis=1).astype(np.float64)
    n_items = item_lists(plain).list.len().to_numpy().astype(np.float64)
    length = plain.select(sum(pl.col(c).cast(pl.String).str.replace_all(r"[^A-Za-z]", "")
                              .str.len_chars().fill_null(0) for c in NAME_FIELDS
                              if c in plain.columns).alias("l"))["l"].to_numpy().astype(float)

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        return round(float(np.corrcoef(a, b)[0, 1]), 4) if a.std() and b.std() else 0.0

    fit, test = slice(0, None, 2), slice(1, None, 2)
    if w[fit].std() and length[test].size:
        slope, icpt = np.polyfit(w[fit], length[fit], 1)
        right = float((np.rint(slope * w[test] + icpt) == length[test]).mean())
    else:
        right = 0.0
    _, counts = np.unique(length[test], return_counts=True)
    return {"correlation_poids_items": corr(w, n_items),
            "correlation_poids_longueur_noms": corr(w, length),
            "longueur_noms_retrouvee": round(right, 4),
            "prior_longueur_noms": round(float(counts.max() / max(counts.sum(), 1)), 4)}


# ------------------------------------------------------------------ all three

def measure(lanes: pl.DataFrame | np.ndarray, plain: pl.DataFrame,
            public_names: list[str] | pl.DataFrame | None = None, *,
            graph_seed: int = 0) -> dict:
    """The three attacks on `lanes` (residue lanes bf_*, or a 0/1 matrix), scored against
    `plain` (same row order; columns of bloom_items.PLAIN_COLUMNS). `public_names`: the
    attacker's first-name list (a list, or a table with a `prenom1` column), added to the
    dictionary of the name guess. The graph attack's plaintext is `plain` itself: full overlap,
    the worst case."""
    bits = bits_from_lanes(lanes)
    if bits.shape[0] != plain.height:
        raise ValueError("lanes and plaintext must have the same rows")
    if isinstance(public_names, pl.DataFrame):
        public_names = public_names["prenom1"].unique().sort().to_list()
    mined = pattern_mining(bits, plain, public_names)
    weight = weight_attack(bits, plain)
    graph = bloom_graph.graph_attack(bits, plain, seed=graph_seed)
    return {
        "lignes": int(bits.shape[0]),
        "bits": int(bits.shape[1]),
        "annee_naissance_retrouvee": mined["annee_retrouve"],
        "prior_annee": mined["prior_annee"],
        "date_complete_retrouvee": mined["date_complete_retrouvee"],
        "prior_date_complete": mined["prior_date_complete"],
        "noms_retrouves": mined.get("noms_retrouves", 0.0),
        "prenoms_retrouves": mined.get("prenoms_retrouves", 0.0),
        "reidentifies_graphe": graph["reidentifies"],
        "fouille_de_motifs": mined,
        "poids_de_hamming": weight,
        "graphe": graph,
    }


__all__ = ["DATE_FIELDS", "measure", "pattern_mining", "weight_attack"]
