"""Agency statistics files: owner-only and small-cell suppressed like every published count.

Counts per quartier (re-identification, ...) single out small groups as surely as a list would:
each per-quartier table is written with its total through the project's suppression
(pipeline.shared.suppression, same threshold and secondary suppression as aggregates.csv), and
the file is owner-only (0600). The in-memory stats the caller returns keep the exact figures.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.common.files import write_text
from pipeline.shared.suppression import PUBLISHED, TOTAL, suppress


def suppressed_counts(counts: Mapping[str, int]) -> dict[str, int | str]:
    """One row of counts (key -> n) and its total, hidden cells labelled as in aggregates.csv."""
    keys = sorted(counts)
    if not keys:
        return {TOTAL: 0}
    table = suppress([[int(counts[k]) for k in keys]])
    cells = [*keys, TOTAL]
    return {k: table.values[0][j] if table.status[0][j] == PUBLISHED else table.label(0, j)
            for j, k in enumerate(cells)}


def write_agency_stats(path: Path, stats: Mapping[str, Any],
                       per_quartier: Sequence[str] = ("par_quartier",)) -> Path:
    """Write `stats` as JSON, owner-only, each `per_quartier` table small-cell suppressed."""
    doc = {k: suppressed_counts(v) if k in per_quartier and isinstance(v, Mapping) else v
           for k, v in stats.items()}
    return write_text(Path(path), json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True)
                      + "\n", private=True)
