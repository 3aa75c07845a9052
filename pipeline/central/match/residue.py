"""Residue stage of the staged exchange: the rows stage 1 left unlinked, linked by their Bloom
filters (pipeline/shared/bloom.py) on any engine.

Stage 1 (the passes and Fellegi–Sunter) writes, per provider, the handles it left unlinked and
not opposed: `write_requests`, into `<out>/residu/demande_<provider>.csv`. Each agency answers
with the keyed, hardened Bloom-filter lanes of those rows only (`residu.parquet`); `link_residue`
then links them: candidates = rows sharing an LSH band (bit sampling of the lanes, bands of
bloom.yaml `lsh:`) plus every stage-1 clerical pair; agreement = similarity band of the two
filters (Hamming distance by bit_count in SQL), household context (the two households already
linked to each other) and the token comparisons of comparisons.yaml; u from random pairs of
residue rows, m by EM on the candidates' patterns (the token comparisons' m starting from
stage 1's, as a prior); greedy one-to-one, link and review thresholds of comparisons.yaml
`residue:`. Links carry the pass name declared there (`residu_bloom`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from pipeline.central.engines.base import Engine, Table
from pipeline.central.match import probabilistic
from pipeline.central.match.db import (
    OPPOSITION_COLUMN,
    PROVIDER_COLUMN,
    LoadedExport,
    counts_by,
    render,
    run,
    sql_literal,
)
from pipeline.central.match.model import (
    PROB_FLOOR,
    PSEUDO_COUNT,
    level_weights,
    prior_weight,
    u_from_counts,
)
from pipeline.common import french
from pipeline.common.errors import InputError
from pipeline.common.files import write_text
from pipeline.common.progress import warn
from pipeline.shared import bloom
from pipeline.shared.linkage_model import Comparison, Config

BENEFITS = "caf"  # the benefits side's provider (its requests file)
COVERAGE_DEFAULT = "cpam"  # the coverage side's provider when its file names none
BLOOM = "bloom"
# Date classes of a pair: how many of its two rows have a known birth date (2 = both: the top
# scale of the filter levels), comparisons.yaml residue.date_known.
DATE_CLASSES = 3
DATE_CLASS_LABELS = ("dates absentes des deux côtés", "date absente d'un côté", "")
DATE_CLASS_NAMES = ("_sans_dates", "_une_date", "")
FOYER = "foyer_contexte"


@dataclass(frozen=True)
class ResidueSettings:
    """comparisons.yaml `residue:` (thresholds, EM) and bloom.yaml (lanes, bits, LSH bands)."""

    pass_name: str
    similarity_levels: tuple[float, ...]
    max_bucket: int
    max_band_pairs: int
    crowded_alert_share: float
    u_sample_pairs: int
    u_same_side_pairs: int
    link_min_similarity: float
    seed: int
    m_prior_pairs: float
    link_weight: float
    review_weight: float
    lanes: tuple[str, ...]
    bits: int
    token_comparisons: tuple[str, ...]
    full_comparison_max_pairs: int
    date_known: str
    namesake_guard: str
    namesake_token: str
    namesake_min_share: float

    @property
    def n_sim(self) -> int:
        """Similarity levels per density class, `else` included."""
        return len(self.similarity_levels) + 1

    @property
    def n_levels(self) -> int:
        """Levels of the filter comparison: one scale per date class."""
        return DATE_CLASSES * self.n_sim

    def max_distances(self) -> list[int]:
        """Each similarity level as the largest Hamming distance it admits (integers: the same
        decision on every engine)."""
        return [self.max_distance(s) for s in self.similarity_levels]

    def max_distance(self, similarity: float) -> int:
        """The largest Hamming distance a similarity admits."""
        return int(np.floor((1.0 - similarity) * self.bits + 1e-9))


def settings(cfg: Config) -> ResidueSettings:
    raw = cfg.residue
    if raw is None or cfg.residue_pass is None:
        raise InputError(cfg.path, "section « residue » absente du modèle de liaison",
                         column="residue")
    levels = tuple(float(x) for x in raw["similarity_levels"])
    if list(levels) != sorted(levels, reverse=True) or not all(0 < x <= 1 for x in levels):
        raise InputError(cfg.path, "residue.similarity_levels : seuils entre 0 et 1, décroissants",
                         column="similarity_levels")
    link_w, review_w = float(raw["link_weight"]), float(raw["review_weight"])
    if review_w > link_w:
        raise InputError(cfg.path, "residue.review_weight doit être inférieur ou égal à "
                         "residue.link_weight", column="review_weight")
    return ResidueSettings(
        pass_name=cfg.residue_pass.name, similarity_levels=levels,
        max_bucket=int(raw["max_bucket"]),
        max_band_pairs=int(raw["lsh_max_band_pairs"]),
        crowded_alert_share=float(raw["lsh_crowded_alert_share"]),
        u_sample_pairs=int(raw["u_sample_pairs"]),
        u_same_side_pairs=int(raw["u_same_side_pairs"]),
        link_min_similarity=float(raw["link_min_similarity"]),
        seed=int(raw["seed"]), m_prior_pairs=float(raw["m_prior_pairs"]),
        link_weight=link_w, review_weight=review_w, lanes=tuple(bloom.LANES),
        bits=64 * len(bloom.LANES),
        token_comparisons=tuple(str(x) for x in raw.get("token_comparisons", [])),
        full_comparison_max_pairs=int(raw.get("full_comparison_max_pairs", 0)),
        date_known=" ".join(str(raw["date_known"]).split()),
        namesake_guard=" ".join(str(raw.get("namesake_guard", "FALSE")).split()),
        namesake_token=str(raw.get("namesake_token", "")),
        namesake_min_share=float(raw.get("namesake_min_share", 0.0)))


# ---------------------------------------------------------------- requests (stage 1)


def request_path(out_dir: Path, provider: str) -> Path:
    return Path(out_dir) / bloom.RESIDUE_DIR / bloom.RESIDUE_REQUEST.format(provider=provider)


def requests(eng: Engine, caf: LoadedExport, cpam: LoadedExport,
             links: Table) -> dict[str, pl.Series]:
    """Per provider, the handles stage 1 left unlinked (the clerical band included) and not
    opposed, sorted. `links` = the stage-1 links (lid, rid). From the loaded handle tables by id
    (request_handles.sql) rather than by re-reading the exports and joining on the handle
    strings: at 1 M x 1 M 0.05 s instead of 0.3 s."""
    out: dict[str, pl.Series] = {}
    sides = ((BENEFITS, caf, "lid"), (COVERAGE_DEFAULT, cpam, "rid"))
    for default, export, side in sides:
        provider = f"h.{PROVIDER_COLUMN}" if export.has_provider else sql_literal(default)
        opposed = (f"coalesce(h.{OPPOSITION_COLUMN}, FALSE)" if export.has_opposition
                   else "FALSE")
        unlinked = eng.collect(render(eng, "request_handles", handles=export.handles,
                                      links=links, side=side, provider=provider,
                                      opposed=opposed))
        # every provider of the side gets its file, an empty one when stage 1 linked all its rows
        providers = (counts_by(eng, export.handles, PROVIDER_COLUMN) if export.has_provider
                     else {default: export.rows})
        for value in providers:
            rows = unlinked.filter(pl.col("provider") == value)
            out[str(value)] = rows["handle"].sort()
    return dict(sorted(out.items()))


def write_requests(out_dir: Path, wanted: Mapping[str, pl.Series]) -> dict[str, int]:
    """`<out>/residu/demande_<provider>.csv`: one column `handle`, sorted, UTF-8, header."""
    counts = {}
    for provider, handles in wanted.items():
        text = "\n".join([bloom.REQUEST_COLUMN, *handles.to_list(), ""])
        write_text(request_path(out_dir, provider), text)
        counts[provider] = handles.len()
    return counts


# ---------------------------------------------------------------- residue linking


@dataclass(frozen=True)
class ResidueTables:
    """What the outputs read of the residue stage (tables of the engine session)."""

    links: Table  # (lid, rid, pass, how)
    assigned: Table  # every pair the residue assignment kept (links and review band)
    clerical: Table  # (lid, rid): the residue review band + the stage-1 review pairs kept
    kept: Table  # (lid, rid): the stage-1 review pairs the residue stage did not score
    scored: Table  # residue candidates with levels, weights and w


def _read_residue(path: Path, provider: str, wanted: pl.Series, lanes: Sequence[str]
                  ) -> pl.DataFrame:
    """One agency's residu.parquet: the requested handles only, the declared lanes only."""
    path = Path(path)
    if path.is_dir():
        path = path / bloom.RESIDUE_FILE
    if not path.is_file():
        raise InputError(path, f"fichier de résidu de « {provider} » introuvable")
    try:
        schema = pl.read_parquet_schema(path)
    except Exception as exc:
        raise InputError(path, "fichier Parquet illisible") from exc
    expected = ["handle", *lanes]
    for col in expected:
        if col not in schema:
            raise InputError(path, "colonne obligatoire absente", column=col)
    extra = sorted(set(schema) - set(expected))
    if extra:
        raise InputError(path, "colonne non prévue par le contrat du résidu", column=extra[0])
    bad = [c for c in lanes if schema[c] != pl.Int64]
    if bad:
        raise InputError(path, "colonne de type inattendu (entier 64 bits attendu)",
                         column=bad[0])
    frame = pl.read_parquet(path, columns=expected)
    if frame["handle"].null_count() or frame["handle"].is_duplicated().any():
        raise InputError(path, "identifiant de rattachement (handle) vide ou en double",
                         column="handle")
    unasked = frame.filter(~pl.col("handle").is_in(wanted.implode()))
    if unasked.height:
        raise InputError(path, f"{unasked.height} ligne(s) dont le handle n'a pas été demandé "
                         f"à « {provider} » (seules les fiches restées sans lien sont attendues)",
                         column="handle")
    return frame


def load_residue(eng: Engine, residue: Mapping[str, Path], wanted: Mapping[str, pl.Series],
                 st: ResidueSettings) -> tuple[Table, Table, dict[str, int]]:
    """The benefits side's and the coverage side's residue files as tables `res_*_raw`."""
    caf_parts, cpam_parts, rows = [], [], {}
    for provider in sorted(residue):
        if provider not in wanted:
            raise InputError(Path(residue[provider]), f"résidu reçu de « {provider} », à qui "
                             "rien n'a été demandé")
        frame = _read_residue(Path(residue[provider]), provider, wanted[provider], st.lanes)
        rows[provider] = frame.height
        (caf_parts if provider == BENEFITS else cpam_parts).append(frame)
    empty = pl.DataFrame(schema={"handle": pl.String, **{c: pl.Int64 for c in st.lanes}})
    caf = pl.concat(caf_parts) if caf_parts else empty
    cpam = pl.concat(cpam_parts) if cpam_parts else empty
    return (eng.load_frame("res_caf_raw", caf), eng.load_frame("res_cpam_raw", cpam), rows)


def _ham(st: ResidueSettings) -> str:
    return " + ".join(f"(CAST(bit_count(bl.{c} | br.{c}) AS INTEGER)"
                      f" - CAST(bit_count(bl.{c} & br.{c}) AS INTEGER))" for c in st.lanes)


def _bloom_whens(st: ResidueSettings) -> str:
    """Level = date class x n_sim + similarity band (1..n, 0 = below every band), the class
    being how many of the two rows have a known birth date (`d.dates`): one comparison, a scale
    per class (a blank date sets no bits, so the same distance means less)."""
    n = len(st.similarity_levels)
    whens = []
    for c in range(DATE_CLASSES - 1, -1, -1):
        whens += [f"WHEN d.dates = {c} AND d.ham <= {dist} THEN {c * st.n_sim + n - i}"
                  for i, dist in enumerate(st.max_distances())]
        whens.append(f"WHEN d.dates = {c} THEN {c * st.n_sim}")
    return " ".join(whens)


def _tokens(cfg: Config, st: ResidueSettings) -> list[Comparison]:
    """The token comparisons of comparisons.yaml the residue model keeps (`token_comparisons`):
    only those whose levels say something about rows every key missed (the NIR)."""
    known = {c.name: c for c in cfg.comparisons}
    unknown = [n for n in st.token_comparisons if n not in known]
    if unknown:
        raise InputError(cfg.path, f"residue.token_comparisons : comparaison inconnue "
                         f"« {unknown[0]} »", column="token_comparisons")
    return [known[n] for n in st.token_comparisons]


def _gammas(cfg: Config, st: ResidueSettings) -> str:
    return "".join(",\n" + probabilistic.gamma_case(c) for c in _tokens(cfg, st))


def _comparisons(cfg: Config, st: ResidueSettings) -> list[tuple[str, int]]:
    """(name, levels incl. `else`) of the residue model, in pattern order."""
    return [(BLOOM, st.n_levels), (FOYER, 3),
            *((c.name, c.n_levels) for c in _tokens(cfg, st))]


def namesake_shares(eng: Engine, st: ResidueSettings, caf: Table, cpam: Table
                    ) -> dict[str, float]:
    """Share of each side's rows with a namesake in its own file (`namesake_token`)."""
    if not st.namesake_token:
        return {}
    out = {}
    for side, records in (("caf", caf), ("cpam", cpam)):
        n, shared = eng.rows(render(eng, "residue_namesake_rate", token=st.namesake_token,
                                    records=records))[0]
        out[side] = round(int(shared) / int(n), 6) if n else 0.0
    return out


def _gamma_table(eng: Engine, cfg: Config, st: ResidueSettings, pairs: Table, target: str,
                 sides: tuple[Table, Table, Table, Table, Table, Table], guard: str) -> Table:
    res_l, res_r, caf, cpam, fmap, sizes = sides
    return run(eng, "residue_gamma", target, pairs=pairs, ham=_ham(st), foyer_sizes=sizes,
               guard=guard,
               bloom_whens=_bloom_whens(st), gammas=_gammas(cfg, st), res_l=res_l, res_r=res_r,
               caf=caf, cpam=cpam, foyer_map=fmap)


def _random_pairs(eng: Engine, st: ResidueSettings, res_l: Table, res_r: Table) -> Table:
    ids_l = eng.collect(render(eng, "residue_ids", records=res_l))["id"].to_numpy()
    ids_r = eng.collect(render(eng, "residue_ids", records=res_r))["id"].to_numpy()
    n = int(min(st.u_sample_pairs, len(ids_l) * len(ids_r)))
    rng = np.random.default_rng(st.seed)
    lid = ids_l[rng.integers(0, len(ids_l), n)] if n else np.zeros(0, dtype=np.int32)
    rid = ids_r[rng.integers(0, len(ids_r), n)] if n else np.zeros(0, dtype=np.int32)
    frame = pl.DataFrame({"lid": lid.astype(np.int32), "rid": rid.astype(np.int32)})
    return eng.load_frame("res_rand_pairs", frame)


def _pattern_counts(eng: Engine, names: list[str], table: Table) -> tuple[np.ndarray, np.ndarray]:
    cols = ", ".join(f"g_{n}" for n in names)
    rows = eng.rows(render(eng, "patterns", columns=cols, table=table))
    if not rows:
        return np.zeros((0, len(names)), dtype=np.int64), np.zeros(0)
    arr = np.asarray(rows, dtype=np.int64)
    return arr[:, :-1], arr[:, -1].astype(float)


def _level_counts(patterns: np.ndarray, counts: np.ndarray,
                  comps: list[tuple[str, int]]) -> list[np.ndarray]:
    out = []
    for k, (_, n) in enumerate(comps):
        g = patterns[:, k] if len(patterns) else np.zeros(0, dtype=np.int64)
        valid = g >= 0
        w = counts[valid] if len(counts) else np.zeros(0)
        out.append(np.bincount(g[valid], weights=w, minlength=n).astype(np.int64))
    return out


def _initial_m(st: ResidueSettings, class_share: np.ndarray) -> np.ndarray:
    """Most mass on the most similar levels of each date class, the classes in their share of
    the cross pairs (EM starts from "a blank date says nothing")."""
    band = 3.0 ** np.arange(st.n_sim)
    return _per_class(np.tile(band, DATE_CLASSES), class_share)


def _per_class(levels: np.ndarray, class_share: np.ndarray) -> np.ndarray:
    """`levels` (a weight per filter level, the date classes' scales one after the other)
    normalised within each class, each class then given its share: P(class) x P(level | class)."""
    blocks = levels.reshape(len(class_share), -1).astype(float)
    p = blocks / blocks.sum(axis=1, keepdims=True) * np.maximum(class_share, PROB_FLOOR)[:, None]
    return (p / p.sum()).reshape(-1)


@dataclass
class ResidueModel:
    names: list[str]
    m: list[np.ndarray]
    u: list[np.ndarray]
    weights: list[np.ndarray]
    lam: float
    prior: float
    facts: dict[str, Any]


def _class_pairs(eng: Engine, res_l: Table, res_r: Table) -> np.ndarray:
    """Cross pairs of the residue per date class (0, 1 or 2 known birth dates), exact."""
    (nl, kl), (nr, kr) = (tuple(int(x or 0) for x in eng.rows(
        render(eng, "residue_date_counts", records=t))[0]) for t in (res_l, res_r))
    return np.array([(nl - kl) * (nr - kr), kl * (nr - kr) + (nl - kl) * kr, kl * kr],
                    dtype=np.int64)


def _self_levels(eng: Engine, st: ResidueSettings, records: Table, side: str) -> np.ndarray:
    """Similarity-level counts of random pairs of two rows of one side (non-matches), blocked
    or not: u of the levels among ALL cross pairs (the model's population, see `fit`). The
    sample is large (`u_same_side_pairs`) because the decisive levels are rare among strangers
    (about 1e-5 to 1e-7 of the pairs at similarity 0.66 to 0.75)."""
    ids = eng.collect(render(eng, "residue_ids", records=records))["id"].to_numpy()
    n = int(min(st.u_same_side_pairs // 2, len(ids) * max(len(ids) - 1, 0)))
    rng = np.random.default_rng(st.seed + (1 if side == "l" else 2))
    pairs = pl.DataFrame({"lid": ids[rng.integers(0, len(ids), n)].astype(np.int32),
                          "rid": ids[rng.integers(0, len(ids), n)].astype(np.int32)}
                         ) if n else pl.DataFrame(schema={"lid": pl.Int32, "rid": pl.Int32})
    table = eng.load_frame(f"res_self_{side}", pairs)
    rows = eng.rows(render(eng, "residue_self_levels", pairs=table, records=records,
                           ham=_ham(st), bloom_whens=_bloom_whens(st)))
    eng.drop(table)
    out = np.zeros(st.n_levels, dtype=np.int64)
    for g, k in rows:
        out[int(g)] += int(k)
    return out


def _em_fixed_u(patterns: np.ndarray, counts: np.ndarray, u: list[np.ndarray],
                m: list[np.ndarray], prior_counts: list[np.ndarray], cap: float,
                max_iterations: int, tolerance: float, class_share: np.ndarray | None = None
                ) -> tuple[list[np.ndarray], float, int, bool]:
    """EM for m and the match share λ with u fixed, λ capped at `cap` (no more true pairs than
    the smaller side has rows: without the cap the mixture may explain the mass of dissimilar
    pairs as a second "match" class). `class_share`: the filter comparison's m keeps these
    masses per date class (those of u): the class is not evidence, only the similarity within
    it (a free class mass let EM call "matches" the pairs where blank dates and the household
    context go together: 462 of them in a residue of about 3 true pairs)."""
    log_u = np.zeros(len(patterns))
    for k, p in enumerate(u):
        g = patterns[:, k]
        log_u[g >= 0] += np.log(np.maximum(p[g[g >= 0]], PROB_FLOOR))
    lam = cap / 2
    converged, it = False, 0
    for it in range(1, max_iterations + 1):  # noqa: B007 (reported)
        log_m = np.zeros(len(patterns))
        for k, p in enumerate(m):
            g = patterns[:, k]
            log_m[g >= 0] += np.log(np.maximum(p[g[g >= 0]], PROB_FLOOR))
        a = np.log(lam) + log_m
        b = np.log1p(-lam) + log_u
        post = 1.0 / (1.0 + np.exp(np.clip(b - a, -700, 700)))
        w = counts * post
        new_m = []
        for k, p in enumerate(m):
            g = patterns[:, k]
            num = np.bincount(g[g >= 0], weights=w[g >= 0], minlength=len(p)) + PSEUDO_COUNT
            num = num + prior_counts[k]
            new_m.append(num / num.sum() if k or class_share is None
                         else _per_class(num, class_share))
        new_lam = float(min(max(w.sum() / counts.sum(), 1e-12), cap))
        delta = max(abs(new_lam - lam) / max(lam, 1e-12),
                    *(float(np.abs(x - y).max()) for x, y in zip(new_m, m, strict=True)))
        m, lam = new_m, new_lam
        if delta < tolerance:
            converged = True
            break
    return m, lam, it, converged


def fit(eng: Engine, cfg: Config, st: ResidueSettings, cand_gamma: Table, rand_gamma: Table,
        stage1: probabilistic.FittedModel, sides: tuple[Table, Table]) -> ResidueModel:
    """Fellegi–Sunter over every CAF x CPAM residue pair (the candidates, plus the pairs no band
    gave as one pattern of known count). u of the similarity levels from a large sample of
    random pairs of two rows of one side (certain non-matches: with one strong comparison EM
    cannot also estimate u, and cross-side random pairs are rich in true pairs in a small
    residue); u of the other comparisons from random cross pairs; m and the share of true pairs
    by EM with u fixed, the share capped at one partner per row of the smaller side (MAP: the
    token comparisons' m of stage 1 as a prior of `m_prior_pairs` pseudo-pairs). The score's
    prior is that share among all pairs: a residue of partnerless rows has a tiny prior, and
    chance similarity between strangers (same birth year, commune, close names) does not link."""
    res_l, res_r = sides
    n_l, n_r = eng.count(res_l), eng.count(res_r)
    comps = _comparisons(cfg, st)
    names = [n for n, _ in comps]
    n_levels = [k for _, k in comps]
    rp, rc = _pattern_counts(eng, names, rand_gamma)
    u_counts = _level_counts(rp, rc, comps)
    self_counts = _self_levels(eng, st, res_l, "l") + _self_levels(eng, st, res_r, "r")
    class_pairs = _class_pairs(eng, res_l, res_r)
    class_share = class_pairs / max(int(class_pairs.sum()), 1)
    u = u_from_counts(u_counts)
    # u of the filter levels: P(date class) among all cross pairs (exact; one side's own pairs
    # do not have the cross pairs' mix of blank dates) x P(band | class) among same-side random
    # pairs, add-one smoothed
    u[0] = _per_class(self_counts + 1.0, class_share)
    patterns, counts = _pattern_counts(eng, names, cand_gamma)
    n_cand = int(counts.sum())
    # The population is every CAF x CPAM residue pair, not the candidates: the pairs no LSH band
    # gave are one pattern (filters different, nothing else compared) of known count. Then u
    # (same-side random pairs, blocked or not) and the prior are those of that population and the
    # prior is bounded by one partner per row, whatever share of the rows has no partner.
    # One such pattern per date class (the `else` level of its scale), of known count.
    n_all = n_l * n_r
    patterns = patterns.reshape(-1, len(names))
    in_class = np.bincount(patterns[:, 0] // st.n_sim, weights=counts, minlength=DATE_CLASSES)
    outside = 0
    for c in range(DATE_CLASSES):
        rest = int(class_pairs[c] - in_class[c])
        if rest > 0:
            row = np.full((1, len(names)), -1, dtype=np.int64)
            row[0, 0] = c * st.n_sim
            patterns = np.vstack([patterns, row])
            counts = np.concatenate([counts, [float(rest)]])
            outside += rest
    index = {c.name: k for k, c in enumerate(cfg.comparisons)}
    stage1_m = [np.asarray(stage1.m[index[c.name]], dtype=float) for c in _tokens(cfg, st)]
    m_init = [_initial_m(st, class_share), np.array([0.2, 0.3, 0.5]), *stage1_m]
    prior_counts = [np.zeros(n_levels[0]), np.zeros(3),
                    *(m * st.m_prior_pairs for m in stage1_m)]
    facts: dict[str, Any] = {"u_cross_random_pairs": int(rc.sum()),
                             "u_same_side_random_pairs": int(self_counts.sum()),
                             "candidates": n_cand, "patterns": len(counts)}
    cap = min(min(n_l, n_r) / max(n_all, 1), 0.5)  # one partner per row at most
    if len(counts):
        m, lam, iterations, converged = _em_fixed_u(
            patterns, counts, u, m_init, prior_counts, cap, cfg.em_max_iterations,
            cfg.em_tolerance, class_share=class_share)
        facts |= {"em_iterations": iterations, "em_converged": converged,
                  "em_match_share": lam, "em_match_share_cap": cap,
                  "em_expected_matches": lam * n_all, "pairs_outside_candidates": outside}
    else:
        m, lam = m_init, 0.5
    lam = min(max(lam, 1.0 / max(n_all, 2)), 0.5)
    weights = level_weights(m, u)
    return ResidueModel(names, m, u, weights, lam, prior_weight(lam), facts)


def _score(eng: Engine, model: ResidueModel, source: Table) -> Table:
    comps = []
    for name, w in zip(model.names, model.weights, strict=True):
        cases = " ".join(f"WHEN {g} THEN {float(x)!r}" for g, x in enumerate(w))
        comps.append(f"(CASE g_{name} {cases} ELSE 0.0 END) AS w_{name}")
    return run(eng, "score", "res_scored", prior=repr(float(model.prior)),
               total=" + ".join(f"w_{n}" for n in model.names),
               components=",\n    ".join(comps), source=source, tf_joins="")


def _lsh_pairs(eng: Engine, st: ResidueSettings, res_l: Table, res_r: Table,
               bands: list[tuple[str, int, int]]) -> tuple[Table, dict[str, float]]:
    """Pairs sharing the value of at least one LSH band, and per side the share of band values
    left out because more than `max_bucket` rows hold them."""
    keys, crowded = {}, {}
    for side, records in (("l", res_l), ("r", res_r)):
        selects = "\nUNION ALL\n".join(
            render(eng, "residue_band", band=b, lane=lane, shift=shift,
                   mask=(1 << width) - 1, width=width, records=records).strip()
            for b, (lane, shift, width) in enumerate(bands))
        keys[side] = eng.create(f"res_bands_{side}", selects)
        crowded[side] = float(eng.scalar(render(eng, "residue_band_crowded", keys=keys[side],
                                                max_bucket=st.max_bucket)) or 0.0)
    lsh = run(eng, "residue_lsh_pairs", "res_lsh", keys_l=keys["l"], keys_r=keys["r"],
              max_bucket=st.max_bucket, res_l=res_l, res_r=res_r, ham=_ham(st),
              max_ham=st.max_distances()[-1])
    for t in keys.values():
        eng.drop(t)
    return lsh, crowded


def link_residue(eng: Engine, cfg: Config, residue: Mapping[str, Path],
                 wanted: Mapping[str, pl.Series], stage: Stage1, truth: Table | None = None,
                 ) -> tuple[ResidueTables, dict[str, Any]]:
    """Link the residue rows; return the tables the outputs read and the stats."""
    st = settings(cfg)
    raw_l, raw_r, rows = load_residue(eng, residue, wanted, st)
    lanes = ", ".join(f"x.{c}" for c in st.lanes)
    all_zero = " AND ".join(f"x.{c} = 0" for c in st.lanes)
    res_l = run(eng, "residue_records", "res_caf", raw=raw_l, handles=stage.caf.handles,
                data=stage.caf.data, links=stage.links, side="lid", lanes=lanes,
                all_zero=all_zero, date_known=st.date_known)
    res_r = run(eng, "residue_records", "res_cpam", raw=raw_r, handles=stage.cpam.handles,
                data=stage.cpam.data, links=stage.links, side="rid", lanes=lanes,
                all_zero=all_zero, date_known=st.date_known)
    eng.drop(raw_l)
    eng.drop(raw_r)
    n_l, n_r = eng.count(res_l), eng.count(res_r)

    full = n_l * n_r <= st.full_comparison_max_pairs
    bands = bloom.lsh_bands(bloom.lsh_width(n_l, n_r, st.max_band_pairs))
    crowded: dict[str, float] = {}
    if full:
        lsh = run(eng, "residue_all_pairs", "res_lsh", res_l=res_l, res_r=res_r)
    else:
        lsh, crowded = _lsh_pairs(eng, st, res_l, res_r, bands)
    cand = run(eng, "residue_candidates", "res_cand", lsh=lsh, clerical=stage.clerical,
               res_l=res_l, res_r=res_r)
    n_lsh = eng.count(lsh)
    eng.drop(lsh)
    n_cand = eng.count(cand)
    fmap = run(eng, "foyer_map", "res_foyer_map", links=stage.links, caf=stage.caf.data,
               cpam=stage.cpam.data, free=stage.caf.data)  # every CAF household
    sizes = run(eng, "residue_foyer_sizes", "res_foyer_sizes", caf=stage.caf.data)
    sides = (res_l, res_r, stage.caf.data, stage.cpam.data, fmap, sizes)
    shares = namesake_shares(eng, st, stage.caf.data, stage.cpam.data)
    guard_on = max(shares.values(), default=1.0) >= st.namesake_min_share
    guard = st.namesake_guard if guard_on else "FALSE"
    cand_gamma = _gamma_table(eng, cfg, st, cand, "res_cand_gamma", sides, guard)
    rand = _random_pairs(eng, st, res_l, res_r)
    rand_gamma = _gamma_table(eng, cfg, st, rand, "res_rand_gamma", sides, guard)
    model = fit(eng, cfg, st, cand_gamma, rand_gamma, stage.model, (res_l, res_r))
    eng.drop(rand_gamma)
    eng.drop(rand)
    scored = _score(eng, model, cand_gamma)

    source = run(eng, "residue_assign_source", "res_assign_source", scored=scored,
                 cap=repr(min(st.review_weight, st.link_weight - 1.0)),
                 max_ham=st.max_distance(st.link_min_similarity))
    guarded = int(eng.scalar(f"SELECT count(*) FROM {scored} WHERE guarded = 1 "
                             f"AND g_foyer_contexte <> 2 AND w >= {st.link_weight!r}"))
    assigned, rounds = probabilistic.assign_one_to_one(eng, source, st.review_weight,
                                                       prefix="res_assign")
    lw = repr(st.link_weight)
    links = run(eng, "probabilistic_links", "res_links", assigned=assigned,
                pass_name=sql_literal(st.pass_name), link_weight=lw)
    r_clerical = run(eng, "clerical_pairs", "res_clerical", assigned=assigned, link_weight=lw)
    kept = run(eng, "residue_clerical_kept", "res_clerical_kept", clerical=stage.clerical,
               candidates=cand, assigned=assigned)
    clerical = eng.view("clerical_final", f"SELECT lid, rid FROM {r_clerical}\nUNION ALL\n"
                        f"SELECT lid, rid FROM {kept}")
    lost = eng.scalar(render(eng, "lost_to_one_to_one", scored=scored, assigned=assigned,
                             link_weight=lw))
    alerts = [f"Résidu : {share:.0%} des valeurs de bande LSH du côté "
              f"{'prestations' if s == 'l' else 'couverture'} dépassent {st.max_bucket} lignes "
              f"(bandes de {bands[0][2]} bits) ; des paires ne sont pas comparées, des liaisons "
              "peuvent manquer."
              for s, share in crowded.items() if share > st.crowded_alert_share]
    if not full and bands[0][2] > bloom.PARAMS.bits_per_band:
        alerts.append(f"Résidu de {french.integer(n_l)} × {french.integer(n_r)} lignes : "
                      f"bandes LSH élargies de {bloom.PARAMS.bits_per_band} à {bands[0][2]} "
                      f"bits ({len(bands)} bandes) pour rester sous "
                      f"{french.integer(st.max_band_pairs)} paires ; moins de paires semblables "
                      "sont comparées, des liaisons peuvent manquer.")
    for a in alerts:
        warn(a)
    stats: dict[str, Any] = {
        "pass": st.pass_name,
        "residue_rows": {**rows, "caf_encoded_unlinked": n_l, "cpam_encoded_unlinked": n_r},
        "candidate_pairs": {"lsh": int(n_lsh), "total": int(n_cand),
                            "clerical_stage1_only": int(eng.scalar(
                                f"SELECT count(*) FROM {cand} WHERE source = 1"))},
        "lsh": {"full_comparison": full, "bands": len(bands), "bits_per_band": bands[0][2],
                "max_bucket": st.max_bucket, "max_band_pairs": st.max_band_pairs,
                "crowded_band_values_share": {
                    ("benefits" if s == "l" else "coverage"): round(v, 4)
                    for s, v in crowded.items()}},
        "avertissements": alerts,
        "linked": eng.count(links),
        "clerical_review": eng.count(r_clerical),
        "above_threshold_lost_to_one_to_one": int(lost),
        "namesake_guard": {"rows_with_a_namesake": shares, "applied": guard_on,
                           "kept_from_linking": guarded},
        "assignment_rounds": rounds,
        "thresholds": {"link_weight": st.link_weight, "review_weight": st.review_weight,
                       "similarity_levels": list(st.similarity_levels)},
        "model": model_stats(cfg, st, model),
    }
    if truth is not None:
        reaching, in_cand = eng.rows(render(eng, "residue_truth", truth=truth,
                                            candidates=cand, res_l=res_l, res_r=res_r))[0]
        stats["quality"] = {"true_pairs_reaching_residue": int(reaching or 0),
                            "true_pairs_among_candidates": int(in_cand or 0)}
    eng.drop(cand_gamma)
    return ResidueTables(links, assigned, clerical, kept, scored), stats


def model_stats(cfg: Config, st: ResidueSettings, model: ResidueModel) -> dict[str, Any]:
    labels = {c.name: c for c in cfg.comparisons}
    sims = [f"similarité ≥ {s:g}" for s in st.similarity_levels]
    comps = []
    for k, name in enumerate(model.names):
        levels = []
        for g in range(len(model.m[k]) - 1, -1, -1):
            if name == BLOOM:
                j = g % st.n_sim
                cls = DATE_CLASS_LABELS[g // st.n_sim]
                label = ("différent" if j == 0 else sims[len(sims) - j]) + (
                    f" ({cls})" if cls else "")
            elif name == FOYER:
                label = ("aucun autre membre du foyer lié", "foyer lié à un autre foyer",
                         "foyers déjà liés entre eux")[g]
            else:
                label = labels[name].level_label(g)
            levels.append({"gamma": g, "label": label, "m": float(model.m[k][g]),
                           "u": float(model.u[k][g]), "weight": float(model.weights[k][g])})
        comps.append({"comparison": name, "levels": levels})
    return {"lambda": model.lam, "prior_weight": model.prior, **model.facts,
            "comparisons": comps}


def level_name(cfg: Config, st: ResidueSettings, name: str, g: int) -> str:
    if g < 0:
        return "null"
    if name == BLOOM:
        k = g % st.n_sim
        sim = "else" if k == 0 else f"sim_{st.similarity_levels[len(st.similarity_levels) - k]:g}"
        return sim + DATE_CLASS_NAMES[g // st.n_sim]
    if name == FOYER:
        return ("aucun_lien", "autre_foyer", "lie")[g]
    return next(c for c in cfg.comparisons if c.name == name).level_name(g)


def pair_weights(eng: Engine, all_scored: Table, res: ResidueTables) -> Table:
    """(lid, rid, w) of every pair written out, stage 1 and residue."""
    return run(eng, "residue_weights", "pair_weights", all_scored=all_scored, scored=res.scored,
               assigned=res.assigned)


def explanations(eng: Engine, cfg: Config, res: ResidueTables, caf: LoadedExport,
                 cpam: LoadedExport, links: Table) -> pl.DataFrame:
    """The residue pairs' rows of link_explanations.parquet."""
    st = settings(cfg)
    names = [n for n, _ in _comparisons(cfg, st)]
    cols = ["s.w - (" + " + ".join(f"s.w_{n}" for n in names) + ") AS prior_weight"]
    for n, k in _comparisons(cfg, st):
        whens = " ".join(f"WHEN {g} THEN '{level_name(cfg, st, n, g)}'" for g in range(-1, k))
        cols.append(f"(CASE s.g_{n} {whens} END) AS {n}_level")
        cols.append(f"s.w_{n} AS {n}_weight")
    df = eng.collect(render(eng, "residue_explanations", columns=",\n       ".join(cols),
                            scored=res.scored, assigned=res.assigned, caf_handles=caf.handles,
                            cpam_handles=cpam.handles, links=links))
    df = df.with_columns(
        (1.0 - pl.col("bloom_hamming").cast(pl.Float64) / st.bits).alias("bloom_similarity"))
    return df.with_columns(pl.col(c).cast(pl.Float64) for c in df.columns
                           if c.endswith("_weight") and df.schema[c] != pl.Float64)


@dataclass(frozen=True)
class Stage1:
    """What the residue stage reads of stage 1."""

    caf: LoadedExport
    cpam: LoadedExport
    links: Table
    clerical: Table
    model: probabilistic.FittedModel
