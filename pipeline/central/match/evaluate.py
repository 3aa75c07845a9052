"""Quality against a ground truth (synthetic data only): precision, recall, pair completeness.

The truth file lists the true pairs by handle: columns `caf_handle`, `cpam_handle` (Parquet, or
CSV separated by `;` or `,`). Benches build it from the generator's truth/persons.csv and each
agency's handles.parquet.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.central.engines.base import Engine, Table
from pipeline.central.match.db import LoadedExport, counts_by, render, run
from pipeline.common.errors import InputError
from pipeline.common.quality import precision_recall_f1
from pipeline.shared.linkage_model import Config


@dataclass(frozen=True)
class Linkage:
    """The tables of one `link` run that the evaluation reads (passed as values)."""

    caf: LoadedExport
    cpam: LoadedExport
    links: Table
    clerical: Table
    candidates: Table
    caf_rest: Table
    cpam_rest: Table


def _read_truth(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise InputError(path, "fichier de vérité terrain introuvable")
    try:
        if path.suffix == ".parquet":
            df = pl.read_parquet(path)
        else:
            head = path.read_text(encoding="utf-8").split("\n", 1)[0]
            sep = ";" if head.count(";") > head.count(",") else ","
            df = pl.read_csv(path, separator=sep, infer_schema=False)
    except Exception as exc:
        raise InputError(path, "fichier de vérité terrain illisible") from exc
    for col in ("caf_handle", "cpam_handle"):
        if col not in df.columns:
            raise InputError(path, "colonne absente", column=col)
    return df.select(pl.col("caf_handle").cast(pl.String), pl.col("cpam_handle").cast(pl.String))


def load_truth(engine: Engine, path: Path, linkage: Linkage) -> tuple[Table, int]:
    """Truth pairs into table `truth(lid, rid)`; pairs naming an unknown handle are an error."""
    raw = _read_truth(path)
    pairs = engine.load_frame("truth_handles", raw)
    truth = run(engine, "truth_pairs", "truth", pairs=pairs, caf_handles=linkage.caf.handles,
                cpam_handles=linkage.cpam.handles)
    n = engine.count(truth)
    if n != raw.height:
        raise InputError(path, f"{raw.height - n} paires de la vérité terrain désignent un handle "
                               "absent des exports (ou sont en double)")
    return truth, int(n)


def _prf(tp: int, fp: int, fn: int) -> dict[str, float | int]:
    return {"true_positives": tp, "false_positives": fp, "false_negatives": fn,
            **precision_recall_f1(tp, tp + fp, tp + fn)}


def _true_count(engine: Engine, pairs: Table, truth: Table) -> int:
    return int(engine.scalar(render(engine, "true_pairs_count", pairs=pairs, truth=truth)))


def evaluate(engine: Engine, truth_path: Path, cfg: Config, linkage: Linkage) -> dict[str, Any]:
    """Person-level quality of the links, per pass, and blocking pair completeness."""
    truth, n_truth = load_truth(engine, truth_path, linkage)
    tp = _true_count(engine, linkage.links, truth)
    n_links = engine.count(linkage.links)
    out: dict[str, Any] = {"truth_pairs": n_truth, **_prf(tp, n_links - tp, n_truth - tp)}
    per_pass = engine.rows(render(engine, "precision_by_pass", links=linkage.links, truth=truth))
    out["precision_by_pass"] = {
        p: {"links": int(n), "true": int(t), "precision": precision_recall_f1(t, n, t)["precision"]}
        for p, n, t in per_pass}
    clerical_true = _true_count(engine, linkage.clerical, truth)
    out["clerical_review"] = {"pairs": engine.count(linkage.clerical),
                              "true_pairs": clerical_true}
    # Pair completeness: among true pairs whose two records reached the probabilistic step,
    # the share each blocking rule (and their union) puts among the candidates.
    rules = ",\n       ".join(
        f"coalesce(({b.on}), FALSE) AS b{i}" for i, b in enumerate(cfg.blocking_rules)
    )
    truth_rest = run(engine, "truth_rest", "truth_rest", rules=rules, truth=truth,
                     caf_rest=linkage.caf_rest, cpam_rest=linkage.cpam_rest,
                     caf=linkage.caf.data, cpam=linkage.cpam.data)
    n_rest = engine.count(truth_rest)
    in_cand = _true_count(engine, truth_rest, linkage.candidates)
    per_rule = {}
    for i, b in enumerate(cfg.blocking_rules):
        k = sum(counts_by(engine, truth_rest, f"b{i}", where=f"b{i}").values())
        per_rule[b.name] = (k / n_rest) if n_rest else 1.0
    out["blocking_pair_completeness"] = {
        "true_pairs_reaching_probabilistic": int(n_rest),
        "overall": (in_cand / n_rest) if n_rest else 1.0,
        "by_rule": per_rule,
    }
    return out
