"""`link()`: the central linkage of a CAF export with the coverage side (CPAM, other providers).

Order: deterministic passes (comparisons.yaml `passes`), then Fellegi–Sunter on the records they
left, one-to-one. Writes links.parquet, link_explanations.parquet, clerical_review.parquet and
link_stats.json into `out_dir`. The outputs carry handles, pass names and weights only: never a
token, never a raw identifier. Runs on any engine of pipeline/central/engines (DuckDB by default,
Spark).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.central.engines import EngineSettings, current_settings, open_engine
from pipeline.central.engines.base import Engine, Table
from pipeline.central.match import evaluate, passes, probabilistic
from pipeline.central.match import residue as residue_stage
from pipeline.central.match.db import (
    PROVIDER_COLUMN,
    LoadedExport,
    counts_by,
    load_export,
    render,
    run,
    sql_literal,
    union_all,
)
from pipeline.common.errors import InputError
from pipeline.common.files import write_text
from pipeline.common.progress import step
from pipeline.common.tables import is_sorted_on, write_parquet
from pipeline.shared.linkage_model import IDENTIFIER_ROLE, Comparison, Config, load_config

LINK_COLUMNS = ["caf_handle", "cpam_handle", "pass", "match_weight", "match_probability"]
# Every pair file is written in this order (handles: one row per pair).
PAIR_KEY = ["caf_handle", "cpam_handle"]
OUTPUT_FILES = {"links": "links.parquet", "clerical": "clerical_review.parquet",
                "explanations": "link_explanations.parquet"}
# Above this many scored pairs (links and review band) the stage-1 writer sorts column by column
# and writes one file at a time (_write_low_memory): same bytes, less memory. Scale bench:
# 1 M x 1 M (0.92 M pairs) keeps the side-by-side path (its fastest); at 10 M x 10 M (9.2 M
# pairs) the side-by-side path peaked at 8.3 GB (at its whole-frame sort), this one 6.7-7.0 GB
# with a write no slower (15-16 s against 16-24 s, shared machine).
LOW_MEMORY_WRITE_PAIRS = 2_000_000


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
    cpam_export: Path | Sequence[Path],
    out_dir: Path,
    *,
    config: Path | None = None,
    truth: Path | None = None,
    memory_limit: str | None = None,
    temp_dir: Path | None = None,
    threads: int | None = None,
    engine: EngineSettings | None = None,
    residue: Mapping[str, Path] | None = None,
) -> LinkResult:
    """Link the benefits side (CAF) with the coverage side person to person; write the outputs.

    `cpam_export` is one export or a list of them (CPAM, MSA...): the right-hand side is their
    union in that order; a `fournisseur` column, when the files have one, is kept on the links.
    `engine` (default: the settings in force, DuckDB) chooses the engine; `memory_limit`,
    `temp_dir` and `threads`, when given, override its resources.

    Every run writes the residue requests (`<out>/residu/demande_<provider>.csv`: the handles
    stage 1 left unlinked, not opposed). `residue` = {provider: residu.parquet or its folder}
    (the agencies' answers, their manifests verified by the caller's gate) adds the residue
    stage (pipeline/central/match/residue.py) after stage 1.
    """
    settings = _settings(engine, memory_limit, temp_dir, threads)
    cfg = load_config(config)
    out_dir = Path(out_dir)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    cpu0 = time.process_time()
    eng = open_engine(settings)
    try:
        return _link(eng, cfg, Path(caf_export), cpam_export, out_dir, truth, timings,
                     (t_all, cpu0), residue)
    except eng.out_of_memory as exc:
        raise InputError(
            str(out_dir), f"mémoire insuffisante pour la liaison (memory_limit="
            f"{settings.memory_limit}) ; augmenter la limite ou indiquer un dossier temporaire "
            "sur disque (--temp-dir)"
        ) from exc
    finally:
        eng.close()


def _settings(engine: EngineSettings | None, memory_limit: str | None, temp_dir: Path | None,
              threads: int | None) -> EngineSettings:
    settings = engine or current_settings()
    overrides = {k: v for k, v in (("memory_limit", memory_limit), ("temp_dir", temp_dir),
                                   ("threads", threads)) if v is not None}
    return dataclasses.replace(settings, **overrides) if overrides else settings


def _link(eng: Engine, cfg: Config, caf_export: Path, cpam_export: Path | Sequence[Path],
          out_dir: Path, truth: Path | None, timings: dict[str, float],
          started: tuple[float, float], residue: Mapping[str, Path] | None = None) -> LinkResult:
    t_all, cpu0 = started
    t = time.perf_counter()
    with step("Lecture des exports pseudonymisés"):
        caf = load_export(eng, caf_export, "caf", "l", cfg)
        cpam = load_export(eng, cpam_export, "cpam", "r", cfg)
    timings["load"] = time.perf_counter() - t
    n_l, n_r = caf.rows, cpam.rows

    t = time.perf_counter()
    with step("Passes déterministes"):
        det = passes.run_passes(eng, cfg, caf.data, cpam.data)
    timings["deterministic"] = time.perf_counter() - t
    funnel = det.funnel
    det_links = sum(int(f["linked"]) for f in funnel)

    # Model weights of the deterministic links (explanations) and EM's starting m.
    t = time.perf_counter()
    det_gamma = probabilistic.compute_gammas(eng, cfg, det.links, "det_gamma", caf.data,
                                             cpam.data)
    # EM's starting m comes from the identifier pass's links, wherever it stands.
    id_pass = cfg.role_pass(IDENTIFIER_ROLE)
    det_gamma_first = eng.view("det_gamma_first", render(
        eng, "pairs_of_pass", gammas=det_gamma, links=det.links,
        pass_name=sql_literal(id_pass.name if id_pass else "")))
    m_prior = probabilistic.m_prior(eng, cfg, det_gamma_first)
    timings["deterministic_levels"] = time.perf_counter() - t

    t = time.perf_counter()
    with step("Blocage des paires candidates"):
        caf_rest = eng.create("caf_rest", f"SELECT id FROM {det.caf_free}")
        cpam_rest = eng.create("cpam_rest", f"SELECT id FROM {det.cpam_free}")
        rest_l, rest_r = eng.count(caf_rest), eng.count(cpam_rest)
        cand, block_stats = probabilistic.blocking(eng, cfg, det.caf_free, det.cpam_free)
        n_cand = eng.count(cand)
    timings["blocking"] = time.perf_counter() - t

    t = time.perf_counter()
    with step("Modèle de Fellegi–Sunter (u, EM, scores)"):
        cand_gamma = probabilistic.compute_gammas(eng, cfg, cand, "cand_gamma", caf.data,
                                                  cpam.data)
        lam, prior_facts = _prior(cfg, det_links, n_l, n_r)
        model, fit_facts = probabilistic.fit(eng, cfg, lam, cand_gamma, n_cand, rest_l, rest_r,
                                             (caf.data, cpam.data, n_l, n_r),
                                             m_prior_counts=m_prior)
        tf = probabilistic.build_term_frequencies(eng, cfg, caf.data, cpam.data)
        cand_scored = probabilistic.score(eng, cfg, model, cand_gamma, "cand_scored", tf)
    timings["model"] = time.perf_counter() - t

    t = time.perf_counter()
    with step("Affectation un pour un"):
        assigned, rounds = probabilistic.assign_one_to_one(eng, cand_scored, cfg.review_weight)
        link_weight = repr(cfg.link_weight)
        prob_links = run(eng, "probabilistic_links", "links_probabilistic", assigned=assigned,
                         pass_name=sql_literal(cfg.probabilistic_pass.name),
                         link_weight=link_weight)
        links = union_all(eng, "links_all", [*det.pass_links, prob_links])
        clerical = run(eng, "clerical_pairs", "clerical", assigned=assigned,
                       link_weight=link_weight)
        lost = eng.scalar(render(eng, "lost_to_one_to_one", scored=cand_scored,
                                 assigned=assigned, link_weight=link_weight))
    timings["assignment"] = time.perf_counter() - t

    # Residue requests from the stage-1 links; then, given the agencies' answers, the residue.
    t = time.perf_counter()
    wanted = residue_stage.requests(eng, caf, cpam, links)
    requested = residue_stage.write_requests(out_dir, wanted)
    res: residue_stage.ResidueTables | None = None
    residue_stats: dict[str, Any] = {"requests": requested}
    linkage = evaluate.Linkage(caf, cpam, links, clerical, cand, caf_rest, cpam_rest)
    links_stage1 = links
    if residue is not None:
        with step("Résidu : liaison des empreintes (filtres de Bloom)"):
            truth_table = (evaluate.load_truth(eng, Path(truth), linkage)[0]
                           if truth is not None else None)
            res, found = residue_stage.link_residue(
                eng, cfg, residue, wanted,
                residue_stage.Stage1(caf, cpam, links, clerical, model), truth_table)
            residue_stats |= found
            links = union_all(eng, "links_final", [*det.pass_links, prob_links, res.links])
            linkage = evaluate.Linkage(caf, cpam, links, res.clerical, cand, caf_rest,
                                       cpam_rest)
    timings["residue"] = time.perf_counter() - t

    quality = None
    if truth is not None:  # before the outputs, so that the working tables can go first
        t = time.perf_counter()
        quality = evaluate.evaluate(eng, Path(truth), cfg, linkage)
        timings["evaluate"] = time.perf_counter() - t
    # Large files: free what the outputs do not read before they are built in memory.
    for table in (cand_gamma, cand, caf_rest, cpam_rest, caf.data, cpam.data):
        eng.drop(table)

    t = time.perf_counter()
    with step("Écriture des liens et explications"):
        # Deterministic links get their model weight too (for explanations and audit).
        det_scored = probabilistic.score(eng, cfg, model, det_gamma, "det_scored", tf)
        all_scored = run(eng, "all_scored", "all_scored", columns=", ".join(
            eng.columns(det_scored)), det_scored=det_scored, cand_scored=cand_scored,
            links=links_stage1, clerical=res.kept if res else clerical)
        for table in (det_scored, det_gamma, *tf.values()):
            eng.drop(table)
        tables = _OutputTables(links, res.clerical if res else clerical, all_scored,
                               cand_scored, caf, cpam, res)
        written = _write_outputs(eng, cfg, tables, out_dir)
    timings["write"] = time.perf_counter() - t

    pass_counts = counts_by(eng, links, "pass")
    stats: dict[str, Any] = {
        "inputs": {"caf": {"rows": n_l, "missing_columns": caf.missing_columns},
                   "cpam": {"rows": n_r, "missing_columns": cpam.missing_columns}},
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
        "match_weight_histogram": probabilistic.histogram(eng, cand_scored),
        "clerical_review": {"pairs": written["clerical"]},
        "residue": residue_stats,
    }
    if quality is not None:
        stats["quality"] = quality
    timings["total"] = time.perf_counter() - t_all
    # Wall and CPU seconds (all engine threads) go to their own file: link_stats.json stays a
    # deterministic output (same inputs -> same bytes), timings never are.
    measured = {"timings_s": {k: round(v, 3) for k, v in timings.items()},
                "cpu_s": round(time.process_time() - cpu0, 3)}
    stats_path = out_dir / "link_stats.json"
    write_text(out_dir / "link_timings.json", json.dumps(measured, indent=2) + "\n")
    write_text(stats_path, json.dumps(stats, indent=2, ensure_ascii=False, sort_keys=False)
               + "\n")
    stats |= measured
    return LinkResult(
        links=out_dir / OUTPUT_FILES["links"],
        explanations=out_dir / OUTPUT_FILES["explanations"],
        clerical_review=out_dir / OUTPUT_FILES["clerical"],
        stats_path=stats_path,
        n_links=int(sum(pass_counts.values())),
        n_clerical=written["clerical"],
        stats=stats,
    )


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


@dataclass(frozen=True)
class _OutputTables:
    links: Table
    clerical: Table
    all_scored: Table
    cand_scored: Table
    caf: LoadedExport
    cpam: LoadedExport
    residue: residue_stage.ResidueTables | None = None


def _write_outputs(eng: Engine, cfg: Config, t: _OutputTables, out_dir: Path) -> dict[str, int]:
    if t.residue is None:
        return _write_stage1_outputs(eng, cfg, t, out_dir)
    # the coverage side's provider, when its files name one, goes along with each pair
    extra = f", r.{PROVIDER_COLUMN}" if t.cpam.has_provider else ""
    handles = {"caf_handles": t.caf.handles, "cpam_handles": t.cpam.handles}
    weights = residue_stage.pair_weights(eng, t.all_scored, t.residue)
    links = eng.collect(render(eng, "links_output", links=t.links, scored=weights, extra=extra,
                               **handles))
    clerical = eng.collect(render(eng, "clerical_output", clerical=t.clerical, scored=weights,
                                  extra=extra, **handles))
    links = _typed(links)
    clerical = _typed(clerical)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_parquet(links, out_dir / OUTPUT_FILES["links"], sort_by=PAIR_KEY)
    write_parquet(clerical, out_dir / OUTPUT_FILES["clerical"], sort_by=PAIR_KEY)
    counts = {"links": links.height, "clerical": clerical.height}
    del links, clerical  # one large frame at a time (10 M links: about 1 GB each)
    explained = _weights_as_doubles(eng.collect(render(
        eng, "explanations", columns=_explanation_columns(cfg), scored=t.all_scored,
        caf_handles=t.caf.handles, cpam_handles=t.cpam.handles, links=t.links)))
    explained = pl.concat([explained, residue_stage.explanations(
        eng, cfg, t.residue, t.caf, t.cpam, t.links)], how="diagonal_relaxed")
    write_parquet(explained, out_dir / OUTPUT_FILES["explanations"], sort_by=PAIR_KEY)
    return counts


def _write_stage1_outputs(eng: Engine, cfg: Config, t: _OutputTables,
                          out_dir: Path) -> dict[str, int]:
    """Without residue, the scored pairs (`all_scored`) are exactly the links and the review
    band: one query brings them with their handles (pairs_output.sql), sorted once here, and
    the three files are column selections and row filters of that one sorted frame (at 1 M the
    three queries, each sorting on the handles, took 1.2 s of the 1.3 s write; now one unordered
    query and one polars sort). Same rows, same bytes as the three queries.

    Up to LOW_MEMORY_WRITE_PAIRS pairs the frame is sorted whole and the files written side by
    side; above, column by column and one file at a time (`_write_low_memory`). Either way each
    file's bytes depend on its rows only."""
    extra = f", r.{PROVIDER_COLUMN}" if t.cpam.has_provider else ""
    pairs = eng.collect(render(eng, "pairs_output", columns=_explanation_columns(cfg),
                               scored=t.all_scored, caf_handles=t.caf.handles,
                               cpam_handles=t.cpam.handles, links=t.links, extra=extra))
    # Weights cast once, before the rows move (links read match_weight of the same rows).
    pairs = _weights_as_doubles(pairs)
    out_dir.mkdir(parents=True, exist_ok=True)
    if pairs.height > LOW_MEMORY_WRITE_PAIRS:
        columns = pairs.get_columns()
        del pairs  # the list is now the columns' only owner: each goes once it is moved
        return _write_low_memory(columns, out_dir)
    pairs = _sorted_pairs(pairs)  # the unsorted frame goes here
    return _write_side_by_side(pairs, out_dir)


def _sorted_pairs(pairs: pl.DataFrame) -> pl.DataFrame:
    """Each (caf, cpam) pair once (handles are unique per side), so any sort on PAIR_KEY gives
    the same order. One-to-one links leave a CAF handle once but for review pairs: on the CAF
    handle alone (5 times cheaper than on both handles), both only when that left ties."""
    pairs = pairs.sort(PAIR_KEY[0])
    return pairs if is_sorted_on(pairs, PAIR_KEY) else pairs.sort(PAIR_KEY)


def _write_side_by_side(pairs: pl.DataFrame, out_dir: Path) -> dict[str, int]:
    """The stage-1 files from the sorted pairs, written at the same time."""
    is_link = pl.col("is_link")
    frames = {"links": _typed(pairs.filter(is_link)), "clerical": _typed(pairs.filter(~is_link)),
              "explanations": pairs.drop("is_link", PROVIDER_COLUMN, strict=False)}
    del pairs
    # The files are independent and polars' Parquet encoder runs mostly on one core: written
    # side by side (0.55 s one after the other at 1 M). Each file's bytes depend on its frame only.
    with ThreadPoolExecutor(max_workers=len(frames)) as pool:
        for done in [pool.submit(write_parquet, frame, out_dir / OUTPUT_FILES[name],
                                 sort_by=PAIR_KEY) for name, frame in frames.items()]:
            done.result()
    return {"links": frames["links"].height, "clerical": frames["clerical"].height}


def _write_low_memory(columns: list[pl.Series], out_dir: Path) -> dict[str, int]:
    """The stage-1 files from the unsorted pair columns, sorted column by column and written
    one file at a time. A whole-frame sort holds the unsorted frame, the sorted one and its own
    working copies together, and three files written side by side hold the links' copy next to
    all the pairs. `columns` (the caller keeps no other reference) is emptied so that the
    unsorted columns go once sorted (columns read from the engine's Arrow batches share their
    memory: it goes with the last of them), and the other columns before the link columns are
    copied."""
    by_name = {c.name: c for c in columns}
    columns.clear()
    # Same order as the whole-frame path (each pair once: one order on PAIR_KEY): on the CAF
    # handle, on both handles when that left ties (told by comparing each sorted CAF handle
    # with the next, two zero-copy slices; a gathered key frame checked with is_sorted_on took
    # 0.8 GB more on 10 M pairs).
    first = PAIR_KEY[0]
    order = by_name[first].arg_sort()
    column = by_name[first].gather(order)
    if column.slice(1).eq_missing(column.slice(0, len(column) - 1)).any():
        order = pl.DataFrame([by_name[k] for k in PAIR_KEY]).select(
            pl.arg_sort_by(PAIR_KEY)).to_series()
        column = by_name[first].gather(order)
    by_name[first] = column
    del column
    for name in list(by_name):
        if name != first:
            by_name[name] = by_name[name].gather(order)
    del order
    is_link = by_name.pop("is_link")
    provider = by_name.pop(PROVIDER_COLUMN, None)
    pair_columns = [*by_name.values(), *([] if provider is None else [provider])]
    clerical = _typed(pl.DataFrame(pair_columns).filter(~is_link))
    del pair_columns
    write_parquet(clerical, out_dir / OUTPUT_FILES["clerical"], sort_by=PAIR_KEY)
    # the explanations: every column but is_link and the provider, as they stand
    write_parquet(pl.DataFrame(list(by_name.values())), out_dir / OUTPUT_FILES["explanations"],
                  sort_by=PAIR_KEY)
    # then the links: the other columns let go first, then each link column filtered, its
    # unfiltered copy let go as it is taken out
    sources = {name: by_name.pop(name) for name in LINK_COLUMNS if name in by_name}
    by_name.clear()
    kept = [sources.pop(name).filter(is_link) for name in list(sources)]
    if provider is not None:
        kept.append(provider.filter(is_link))
        del provider
    links = _typed(pl.DataFrame(kept))
    del kept
    write_parquet(links, out_dir / OUTPUT_FILES["links"], sort_by=PAIR_KEY)
    return {"links": links.height, "clerical": clerical.height}


def _typed(df: pl.DataFrame) -> pl.DataFrame:
    """Output columns and types; match_probability = 1 / (1 + 2^-match_weight), computed here
    rather than by each engine's pow() (Java's and the C library's differ in the last bit)."""
    provider = ([pl.col(PROVIDER_COLUMN).cast(pl.String)] if PROVIDER_COLUMN in df.columns
                else [])
    weight = pl.col("match_weight").cast(pl.Float64)
    return df.select(
        pl.col("caf_handle").cast(pl.String), pl.col("cpam_handle").cast(pl.String), *provider,
        pl.col("pass").cast(pl.String), weight,
        (1.0 / (1.0 + pl.lit(2.0).pow(-weight))).alias("match_probability"),
    )


def _level_case(c: Comparison) -> str:
    whens = " ".join(f"WHEN {g} THEN '{c.level_name(g)}'" for g in range(-1, c.n_levels))
    return f"(CASE g_{c.name} {whens} END)"


def _explanation_columns(cfg: Config) -> str:
    """Waterfall data of link_explanations.parquet, one row per linked or reviewed pair (wide: one
    column pair per comparison): match_weight = prior_weight + the sum of the *_weight columns;
    *_level is the level name of comparisons.yaml (its French label is in link_stats.json,
    model.comparisons)."""
    cols = ["s.w - (" + " + ".join(f"s.w_{n}" for n in _weight_names(cfg)) + ") AS prior_weight"]
    for c in cfg.comparisons:
        cols.append(f"{_level_case(c)} AS {c.name}_level")
        cols.append(f"s.w_{c.name} AS {c.name}_weight")
        if c.levels and c.levels[0].tf:
            cols.append(f"s.w_tf_{c.name} AS {c.name}_tf_weight")
    return ",\n       ".join(cols)


def _weights_as_doubles(df: pl.DataFrame) -> pl.DataFrame:
    """Weights as doubles whatever decimal type an engine infers for the SQL literals of a
    level's weight (DuckDB and Spark widen them differently): same values, same bytes on every
    engine."""
    return df.with_columns(pl.col(c).cast(pl.Float64) for c in df.columns
                           if c.endswith("_weight") and df.schema[c] != pl.Float64)


def _weight_names(cfg: Config) -> list[str]:
    names = []
    for c in cfg.comparisons:
        names.append(c.name)
        if c.levels and c.levels[0].tf:
            names.append(f"tf_{c.name}")
    return names
