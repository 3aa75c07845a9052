"""Rule x quartier counts released outside the agencies, with small-cell suppression.

Two tables share one CSV (column `tableau`): `non_recours` (the target rules) and `a_verifier`
(households not found at the CPAM, never counted as non-take-up). Each has its row totals
(`Total` column) and column totals (`Total` row), and is suppressed on its own
(pipeline/shared/suppression.py): "< 11" (formatted from its SMALL_CELL) for a small cell, "s"
for a secondary suppression.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from pipeline.common.tables import write_csv
from pipeline.shared.rules import Rule
from pipeline.shared.suppression import TOTAL, suppressed_frame


def count_matrix(
    hits: pl.DataFrame, rule_ids: Sequence[str], quartiers: Sequence[str]
) -> list[list[int]]:
    """Households per (rule, quartier) in the given orders (zeros included)."""
    counts = hits.group_by(["regle", "quartier"]).agg(pl.col("foyer").n_unique().alias("n"))
    lookup = {(r, q): n for r, q, n in counts.iter_rows()}
    return [[int(lookup.get((r, q), 0)) for q in quartiers] for r in rule_ids]


def write_aggregates(
    hits: pl.DataFrame,
    rules: Sequence[Rule],
    quartiers: Sequence[str],
    target: Path,
    threshold: int | None = None,
    private: bool = False,
) -> Path:
    """Write aggregates.csv: both tables, suppressed, quartiers in sorted order (`private`:
    owner-only, for the per-quartier counts an agency keeps)."""
    cols = sorted(set(quartiers) | set(hits["quartier"].drop_nulls().to_list()))
    frames = []
    for name, liste in (("non_recours", "cible"), ("a_verifier", "a_verifier")):
        ids = [r.id for r in rules if r.liste == liste]
        if not ids:
            continue
        matrix = count_matrix(hits.filter(pl.col("liste") == liste), ids, cols)
        frames.append(suppressed_frame(name, ids, cols, matrix, threshold))
    out = (
        pl.concat(frames)
        if frames
        else pl.DataFrame(
            schema={
                "tableau": pl.String,
                "regle": pl.String,
                **dict.fromkeys([*cols, TOTAL], pl.String),
            }
        )
    )
    return write_csv(out, target, private=private)
