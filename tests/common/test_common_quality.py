"""Precision / recall / F1 have one implementation (pipeline/common/quality.py) that every
evaluation calls; a second formula anywhere in pipeline/ or bench/ fails the scan."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from pipeline.central.match.evaluate import _prf
from pipeline.common.quality import precision_recall_f1
from pipeline.evaluate import prf

ROOT = Path(__file__).resolve().parents[2]
DECLARATION = ROOT / "pipeline" / "common" / "quality.py"


def test_conventions_at_the_edges() -> None:
    assert precision_recall_f1(0, 0, 0) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert precision_recall_f1(0, 3, 4) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    q = precision_recall_f1(2, 3, 7, digits=3)
    assert q == {"precision": 0.667, "recall": 0.286, "f1": 0.4}  # F1 from the exact values


def test_every_evaluation_gives_the_same_figures() -> None:
    predicted = pl.DataFrame({"k": ["a", "b", "c", "d"]})
    truth = pl.DataFrame({"k": ["a", "b", "c", "e", "f"]})
    chain = prf(predicted, truth)
    linkage = _prf(3, 1, 2)
    for key in ("precision", "recall", "f1"):
        assert chain[key] == round(linkage[key], 5)
    assert (chain["precision"], chain["recall"]) == (0.75, 0.6)


def test_no_second_formula() -> None:
    formula = re.compile(r"2\s*\*\s*\w+\s*\*\s*\w+\s*/|tp\s*/\s*\(?\s*tp\s*\+")
    found = [f"{p.relative_to(ROOT)}:{i}"
             for p in [*sorted((ROOT / "pipeline").rglob("*.py")),
                       *sorted((ROOT / "bench").rglob("*.py"))] if p != DECLARATION
             for i, line in enumerate(p.read_text("utf-8").splitlines(), 1)
             if formula.search(line)]
    assert found == []
