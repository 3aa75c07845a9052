"""Checks across two tables, which a single GE batch cannot express.

`targets_vs_aggregates`: the rule x quartier counts recomputed from targets.parquet must equal
every published cell of aggregates.csv (pipeline/shared/aggregates.py: tables `non_recours`
for
liste `cible` and `a_verifier`; cells are counts, "< 11" for a small cell, "s" for secondary
suppression, both labels read from pipeline/shared/suppression.py). A primary-suppressed cell
must hide a count between 1 and the threshold minus one. Results carry counts
of cells only, never a data value.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.shared.suite_spec import CrossCheckSpec
from pipeline.shared.suppression import TOTAL, primary_label, threshold

TABLE_TO_LISTE = {"non_recours": "cible", "a_verifier": "a_verifier"}


def _load_aggregates(value: Any) -> pl.DataFrame:
    if isinstance(value, pl.DataFrame):
        return value.select(pl.all().cast(pl.String))
    if type(value).__module__.startswith("pandas"):
        return pl.from_pandas(value.astype(str)).select(pl.all().cast(pl.String))
    text = Path(value).read_bytes().decode("utf-8-sig")
    return pl.read_csv(io.StringIO(text), separator=";", infer_schema=False)


def targets_vs_aggregates(targets: pl.DataFrame, aggregates: pl.DataFrame) -> dict[str, int]:
    """Count published cells, mismatches, and inconsistent primary-suppressed cells."""
    cells = (
        aggregates.filter(pl.col("regle") != TOTAL)
        .unpivot(index=["tableau", "regle"], variable_name="quartier", value_name="cellule")
        .filter(pl.col("quartier") != TOTAL)
        .with_columns(liste=pl.col("tableau").replace_strict(TABLE_TO_LISTE, default=None))
    )
    regles = pl.col("regles").cast(pl.String).str.split(",")
    counts = (
        targets.select("liste", "quartier", "foyer", regles.alias("regle"))
        .explode("regle")
        .filter(pl.col("regle").is_not_null() & (pl.col("regle") != ""))
        .group_by("liste", "regle", "quartier")
        .agg(pl.col("foyer").n_unique().alias("n"))
    )
    joined = cells.join(counts, on=["liste", "regle", "quartier"], how="full", coalesce=True)
    joined = joined.with_columns(pl.col("n").fill_null(0))
    published = joined.filter(pl.col("cellule").str.contains(r"^[0-9]+$"))
    primary = joined.filter(pl.col("cellule") == primary_label())
    # Counts in targets whose rule or quartier has no cell at all in the aggregates.
    orphans = joined.filter(pl.col("cellule").is_null() & (pl.col("n") > 0))
    return {
        "cells": joined.filter(pl.col("cellule").is_not_null()).height,
        "published": published.height,
        "mismatched": published.filter(pl.col("cellule").cast(pl.Int64) != pl.col("n")).height,
        "primary_inconsistent": primary.filter(~pl.col("n").is_between(1, threshold() - 1)).height,
        "orphans": orphans.height,
    }


def run_cross_check(
    stage: str, spec: CrossCheckSpec, frame: pl.DataFrame, context: dict
) -> dict[str, Any]:
    """One check record in the same shape as the GE-backed ones (see validation.py)."""
    rec: dict[str, Any] = {
        "key": spec.key, "id": spec.key, "type": f"cross_check:{spec.check}", "column": None,
        "severity": spec.severity, "label": spec.label,
    }
    if spec.check != "targets_vs_aggregates":
        rec.update(evaluated=False, success=None, message="non évaluée (contrôle inconnu)")
        return rec
    if context.get("aggregates") is None:
        rec.update(evaluated=False, success=None,
                   message="non évaluée (contexte absent : aggregates)")
        return rec
    try:
        agg = _load_aggregates(context["aggregates"])
        stats = targets_vs_aggregates(frame, agg)
    except (OSError, pl.exceptions.PolarsError, KeyError, ValueError) as exc:
        rec.update(evaluated=True, success=False,
                   message=f"{stage} · {spec.label} : agrégats illisibles ({type(exc).__name__})")
        return rec
    bad = stats["mismatched"] + stats["primary_inconsistent"] + stats["orphans"]
    rec.update(evaluated=True, success=bad == 0, **stats)
    if bad == 0:
        rec["message"] = "conforme"
    else:
        rec["message"] = (
            f"{stage} · {spec.label} : {stats['mismatched']} cellule(s) publiée(s) différente(s) "
            f"sur {stats['published']}, {stats['primary_inconsistent']} cellule(s) masquée(s) "
            f"incohérente(s), {stats['orphans']} effectif(s) absent(s) des agrégats"
        )
    return rec
