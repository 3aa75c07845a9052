"""The small-cell threshold is declared once (pipeline/shared/suppression.py) and every writer of a
published count follows it: lowering it in that one place changes every output."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import polars as pl
import pytest

from pipeline.central.report.crosschecks import targets_vs_aggregates
from pipeline.central.report.render import _mask_detection, fmt_count
from pipeline.shared import suppression
from pipeline.shared.agency_stats import suppressed_counts
from pipeline.shared.suppression import primary_label, suppress, suppressed_frame

ROOT = Path(__file__).resolve().parents[2]
DECLARATION = ROOT / "pipeline" / "shared" / "suppression.py"


@pytest.fixture
def threshold_10(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(suppression, "SMALL_CELL", 10)


def test_default_threshold_is_the_cnis_eleven() -> None:
    assert suppression.SMALL_CELL == 11 and primary_label() == "< 11"
    assert suppress([[10, 50], [20, 30]]).label(0, 0) == "< 11"


@pytest.mark.usefixtures("threshold_10")
def test_lowering_the_constant_moves_every_writer() -> None:
    table = suppress([[10, 50], [20, 30]])
    assert table.label(0, 0) == "10"  # 10 is publishable at threshold 10
    assert suppress([[9, 50], [20, 30]]).label(0, 0) == "< 10"
    frame = suppressed_frame("non_recours", ["r"], ["Q1", "Q2"], [[9, 40]])
    assert frame.row(0)[:3] == ("non_recours", "r", "< 10")
    stats = suppressed_counts({"Q1": 10, "Q2": 9, "Q3": 8, "Q4": 50})
    assert (stats["Q1"], stats["Q2"], stats["Q3"]) == (10, "< 10", "< 10")
    assert (fmt_count(10), fmt_count(9)) == ("10", "< 10")
    masked = _mask_detection({"detection": {"targets": 9, "a_verifier": 10,
                                            "by_rule": {"a": 9, "b": 10}}})["detection"]
    assert masked == {"targets": "< 10", "a_verifier": 10, "by_rule": {"a": "< 10", "b": 10}}


@pytest.mark.usefixtures("threshold_10")
def test_cross_check_reads_the_threshold_and_its_label() -> None:
    """A « < 10 » cell hiding 10 households is inconsistent at threshold 10; one hiding 9 is not."""
    aggregates = pl.DataFrame({"tableau": ["non_recours"] * 2, "regle": ["r", "Total"],
                               "Q1": ["< 10", "< 10"], "Q2": ["< 10", "< 10"],
                               "Total": ["19", "19"]})
    targets = pl.DataFrame({"liste": ["cible"] * 19,
                            "quartier": ["Q1"] * 9 + ["Q2"] * 10,
                            "foyer": [f"f{i}" for i in range(19)], "regles": ["r"] * 19})
    res = targets_vs_aggregates(targets, aggregates)
    assert res["primary_inconsistent"] == 1 and res["mismatched"] == 0


def _string_constants(path: Path) -> list[tuple[int, str]]:
    """String literals of a module, docstrings excluded."""
    tree = ast.parse(path.read_text("utf-8"))
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and n.body and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)}
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


def test_no_second_declaration_of_the_threshold_or_its_label() -> None:
    """No module but the declaration writes « < N » or compares a count with 11 itself; no
    template writes the label as text."""
    label = re.compile(r"^\s*<\s*\d+\s*$|&lt;\s*\d+|moins de \d+ foyers")
    found = []
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        if path == DECLARATION:
            continue
        found += [f"{path.relative_to(ROOT)}:{ln}" for ln, s in _string_constants(path)
                  if label.search(s)]
        tree = ast.parse(path.read_text("utf-8"))
        found += [f"{path.relative_to(ROOT)}:{n.lineno}" for n in ast.walk(tree)
                  if isinstance(n, ast.Compare)
                  and any(isinstance(c, ast.Constant) and c.value == suppression.SMALL_CELL
                          for c in n.comparators)
                  and any(isinstance(op, ast.Lt | ast.GtE) for op in n.ops)]
        found += [f"{path.relative_to(ROOT)}:{n.lineno}" for n in ast.walk(tree)
                  if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
                  and n.value.value == suppression.SMALL_CELL
                  and any(isinstance(t, ast.Name) and re.search(r"SMALL|CELL|SECRET", t.id)
                          for t in n.targets)]
    for path in sorted((ROOT / "pipeline").rglob("*.j2")):
        found += [f"{path.relative_to(ROOT)}:{i}" for i, line in
                  enumerate(path.read_text("utf-8").splitlines(), 1) if label.search(line)]
    assert not found, found


def test_no_threshold_default_outside_the_declaration() -> None:
    """A parameter named like a threshold defaulting to 11 would freeze a second copy."""
    found = []
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            args = [*fn.args.args, *fn.args.kwonlyargs]
            defaults = [*([None] * (len(fn.args.args) - len(fn.args.defaults))),
                        *fn.args.defaults, *fn.args.kw_defaults]
            found += [f"{path.relative_to(ROOT)}:{fn.lineno} {a.arg}"
                      for a, d in zip(args, defaults, strict=True)
                      if isinstance(d, ast.Constant) and d.value == suppression.SMALL_CELL
                      and re.search(r"threshold|limit|small|cell", a.arg)]
    assert not found, found
