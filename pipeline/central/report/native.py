"""Evaluate a suite's expectations in polars, with Great Expectations' own result semantics.

Importing GE costs 5–20 s per process (its package pulls scipy, altair, pandas and every
expectation class), which alone breaks the central step's 5-second budget on the sample. This
module evaluates the thirteen expectation types the suites use, directly on the polars frame,
and returns results in GE's shape (`element_count`, `missing_count`, `unexpected_count`,
`unexpected_percent` over non-missing values, `observed_value`, `details.mismatched`), so
validation.py builds the same records and French messages from either engine.

GE stays the reference: `validate(..., engine="great_expectations")` runs the same specs through
it, and tests/report runs every planted fault through both engines and asserts identical records.
A type this module does not know is refused loudly (never silently passed).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from pipeline.central.report.pushdown import PUSHABLE, predicate
from pipeline.common.errors import PipelineError
from pipeline.shared.suite_spec import CheckSpec

ENGINE = "polars"


def _map_result(ok: pl.Expr, frame: pl.DataFrame, missing: pl.Expr, mostly: float) -> dict:
    """GE column-map semantics: missing rows are skipped, the percent is over non-missing."""
    row = frame.select(
        missing=missing.sum(),
        unexpected=(~ok & ~missing).sum(),
    ).row(0, named=True)
    total = frame.height
    nonmissing = total - int(row["missing"])
    unexpected = int(row["unexpected"])
    success = nonmissing == 0 or (nonmissing - unexpected) / nonmissing >= mostly
    return {
        "success": success,
        "result": {
            "element_count": total,
            "missing_count": int(row["missing"]),
            "unexpected_count": unexpected,
            "unexpected_percent": (unexpected / nonmissing * 100) if nonmissing else None,
        },
    }


def _null_result(frame: pl.DataFrame, unexpected: pl.Expr, mostly: float) -> dict:
    """expect_column_values_to_(not_)be_null: every row counts, none is "missing"."""
    total = frame.height
    n = int(frame.select(unexpected.sum()).item())
    return {
        "success": total == 0 or (total - n) / total >= mostly,
        "result": {"element_count": total, "unexpected_count": n,
                   "unexpected_percent": (n / total * 100) if total else None},
    }


def _missing(frame: pl.DataFrame, column: str) -> pl.Expr:
    """Null, or NaN in a float column (pandas' isnull, which GE uses)."""
    col = pl.col(column)
    if frame.schema[column].is_float():
        return col.is_null() | col.is_nan()
    return col.is_null()


def _between(value: Any, lo: Any, hi: Any) -> bool:
    return value is not None and (lo is None or value >= lo) and (hi is None or value <= hi)


def _one(frame: pl.DataFrame, s: CheckSpec) -> dict[str, Any]:
    k = s.kwargs
    mostly = float(k.get("mostly", 1.0))
    t = s.type
    if t == "expect_table_row_count_to_be_between":
        n = frame.height
        return {"success": _between(n, k.get("min_value"), k.get("max_value")),
                "result": {"observed_value": n}}
    if t == "expect_table_columns_to_match_set":
        have, want = set(frame.columns), set(k["column_set"])
        exact = k.get("exact_match", True)
        if exact:  # helper columns added by validation.py (flags, lengths) are not data columns
            want |= {c for c in have if "__" in c}
        mism = {}
        if have - want and exact:
            mism["unexpected"] = sorted(have - want)
        if want - have:
            mism["missing"] = sorted(want - have)
        return {"success": not mism, "result": {"observed_value": list(frame.columns),
                                                "details": {"mismatched": mism} if mism else {}}}
    if t == "expect_column_to_exist":
        return {"success": s.column in frame.columns, "result": {}}
    if t == "expect_compound_columns_to_be_unique":
        cols = list(k["column_list"])
        all_missing = pl.all_horizontal(*[pl.col(c).is_null() for c in cols])
        dup = pl.struct(cols).is_duplicated()
        kept = frame.filter(~all_missing)
        res = _map_result(~dup, kept, pl.lit(False), mostly)
        res["result"]["element_count"] = frame.height
        res["result"]["missing_count"] = frame.height - kept.height
        nonmissing = kept.height
        n = res["result"]["unexpected_count"]
        res["result"]["unexpected_percent"] = n / nonmissing * 100 if nonmissing else None
        return res
    if t == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = pl.col(k["column_A"]), pl.col(k["column_B"])
        ok = (a >= b) if k.get("or_equal") else (a > b)
        how = k.get("ignore_row_if", "both_values_are_missing")
        missing = (a.is_null() | b.is_null()) if how == "either_value_is_missing" else (
            a.is_null() & b.is_null())
        return _map_result(ok.fill_null(False), frame, missing, mostly)
    col = pl.col(s.column)
    if t == "expect_column_unique_value_count_to_be_between":
        n = int(frame.select(col.drop_nulls().n_unique()).item())
        return {"success": _between(n, k.get("min_value"), k.get("max_value")),
                "result": {"observed_value": n}}
    if t == "expect_column_values_to_not_be_null":
        return _null_result(frame, _missing(frame, s.column), mostly)
    if t == "expect_column_values_to_be_null":
        return _null_result(frame, ~_missing(frame, s.column), mostly)
    if t in PUSHABLE:
        if t == "expect_column_values_to_be_unique":  # among non-missing values only
            kept = frame.filter(col.is_not_null())
            res = _map_result(~col.is_duplicated(), kept, pl.lit(False), mostly)
            res["result"]["element_count"] = frame.height
            res["result"]["missing_count"] = frame.height - kept.height
            return res
        return _map_result(predicate(s).fill_null(True), frame, _missing(frame, s.column),
                           mostly)
    raise PipelineError(f"type d'attente non pris en charge par le moteur polars : « {t} »")


def run_polars(stage: str, frame: pl.DataFrame, specs: list[CheckSpec]) -> dict[str, dict]:
    """Evaluate the runnable specs; same return shape as validation._run_ge."""
    out: dict[str, dict[str, Any]] = {}
    for s in specs:
        if s.skipped:
            continue
        sub = frame
        if s.where is not None:
            sub = frame.filter(pl.col(s.where[0]) == s.where[1])
        try:
            res = _one(sub, s)
        except pl.exceptions.PolarsError as exc:
            raise PipelineError(
                f"suite {stage}, attente « {s.key} » : évaluation impossible ({type(exc).__name__})"
            ) from exc
        out[s.key] = {"success": bool(res["success"]), "result": res["result"],
                      "exception": False}
    return out
