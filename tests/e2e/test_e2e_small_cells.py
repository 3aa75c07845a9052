"""Every count the sample run publishes is 0, at least the small-cell threshold, or a suppression
mark — read from the one declaration (pipeline/shared/suppression.py), never written here."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import polars as pl

from pipeline.shared.separation import DETECTION_OUT
from pipeline.shared.suppression import SECONDARY_LABEL, primary_label, threshold


def _publishable(label: Any) -> bool:
    if str(label) in {primary_label(), SECONDARY_LABEL}:
        return True
    text = str(label).replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
    return text.isdigit() and (int(text) == 0 or int(text) >= threshold())


def _wide_cells(csv_bytes: bytes, index: list[str]) -> list[str]:
    df = pl.read_csv(io.StringIO(csv_bytes.decode("utf-8-sig")), separator=";",
                     infer_schema=False)
    return df.unpivot(index=index)["value"].to_list()


def _report_counts(view: dict) -> Iterator[Any]:
    det = view["detection"]
    yield from (det[k] for k in ("targets", "a_verifier", "excluded_opposition"))
    for table in det["tables"]:
        for row in table["rows"]:
            yield from (cell["label"] for cell in row["cells"])


def test_aggregates_csv_publishes_no_small_cell(chain_run) -> None:
    # contract 3: the centre counts per rule only (no quartier); the per-quartier table is made
    # at the CAF's re-identification (agregats_quartiers.csv), suppressed the same way
    central = _wide_cells((chain_run.out / DETECTION_OUT / "aggregates.csv").read_bytes(),
                          ["tableau", "regle"])
    local = _wide_cells((chain_run.out / "caf" / "listes" / "agregats_quartiers.csv")
                        .read_bytes(), ["tableau", "regle"])
    assert primary_label() in local  # the sample does exercise the suppression
    for cells in (central, local):
        assert [c for c in cells if not _publishable(c)] == []


def test_report_publishes_no_small_count(chain_run) -> None:
    doc = json.loads((chain_run.out / DETECTION_OUT / "report.json").read_text("utf-8"))
    counts = list(_report_counts(doc["report"]))
    assert len(counts) > 3
    assert [c for c in counts if not _publishable(c)] == []
    det = doc["facts"]["detection"]
    raw = [det.get(k) for k in ("targets", "a_verifier", "excluded_opposition")]
    raw += list((det.get("by_rule") or {}).values())
    assert [c for c in raw if c is not None and not _publishable(c)] == []


def test_agency_statistics_publish_no_small_count(chain_run) -> None:
    files = sorted(chain_run.out.rglob("reidentify_stats.json"))
    assert files, "no agency statistics written by the sample run"
    for path in files:
        per_quartier = json.loads(path.read_text("utf-8"))["par_quartier"]
        assert [v for v in per_quartier.values() if not _publishable(v)] == [], path
