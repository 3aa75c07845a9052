"""Evaluate row predicates in polars for large tables; Great Expectations still counts and judges.

GE's pandas engine runs a regex as one Python call per value and copies the frame per metric: a
1 M-row export with twenty token columns takes minutes. Above a row threshold, each column-map
check (regex, regex list, value set, bounds, uniqueness, not-null) is rewritten as one boolean
column computed by a polars expression — null where GE would skip the value as missing — and GE
validates `expect_column_values_to_be_in_set([True])` on it with the same `mostly`. Element,
missing and unexpected counts are therefore identical to GE's own (tests/report checks both
paths agree), and results record which engine evaluated each predicate. GE then receives only
the columns its remaining checks read (it copies the whole frame for many metrics); checks on
column names run on a zero-row copy of the full table.
"""

from __future__ import annotations

from dataclasses import replace

import polars as pl

from pipeline.shared.suite_spec import CheckSpec

DEFAULT_PUSHDOWN_ROWS = 50_000

PUSHABLE = {
    "expect_column_values_to_match_regex",
    "expect_column_values_to_not_match_regex_list",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_unique",
    "expect_column_values_to_not_be_null",
}


def predicate(spec: CheckSpec) -> pl.Expr:
    col = pl.col(spec.column)
    k = spec.kwargs
    t = spec.type
    if t == "expect_column_values_to_match_regex":
        return col.cast(pl.String).str.contains(k["regex"])
    if t == "expect_column_values_to_not_match_regex_list":
        text = col.cast(pl.String)
        return ~pl.any_horizontal(*[text.str.contains(p) for p in k["regex_list"]])
    if t == "expect_column_values_to_be_in_set":
        return col.is_in(pl.Series(list(k["value_set"])).implode())
    if t == "expect_column_values_to_be_between":
        ok = pl.lit(True)
        if k.get("min_value") is not None:
            ok = ok & (col > k["min_value"] if k.get("strict_min") else col >= k["min_value"])
        if k.get("max_value") is not None:
            ok = ok & (col < k["max_value"] if k.get("strict_max") else col <= k["max_value"])
        return pl.when(col.is_null()).then(None).otherwise(ok)
    if t == "expect_column_values_to_be_unique":
        return pl.when(col.is_null()).then(None).otherwise(~col.is_duplicated())
    if t == "expect_column_values_to_not_be_null":
        return col.is_not_null()
    raise ValueError(t)


def pushdown(
    frame: pl.DataFrame, specs: list[CheckSpec]
) -> tuple[pl.DataFrame, list[CheckSpec], set[str]]:
    """Rewrite pushable checks onto polars-computed flags.

    Returns the frame with the flags added and unread columns emptied, the rewritten specs (same
    order and keys) and the keys of the checks evaluated by polars.
    """
    flags: list[pl.Expr] = []
    out: list[CheckSpec] = []
    pushed: set[str] = set()
    for s in specs:
        if (s.type in PUSHABLE and not s.skipped and s.where is None and s.column is not None
                and s.column in frame.columns):
            flag = f"{s.column}__{s.suite_id}"
            flags.append(predicate(s).alias(flag))
            out.append(replace(
                s, type="expect_column_values_to_be_in_set", column=flag,
                report_column=s.report_column or s.column,
                kwargs={"value_set": [True], **({"mostly": s.kwargs["mostly"]}
                                                if "mostly" in s.kwargs else {})},
            ))
            pushed.add(s.key)
        else:
            out.append(s)
    if not flags:
        return frame, specs, pushed
    frame = frame.with_columns(*flags)
    needed = {s.column for s in out if not s.skipped and s.column} | {
        c for s in out for key in ("column_A", "column_B") if (c := s.kwargs.get(key))
    } | {c for s in out for c in s.kwargs.get("column_list", [])} | {
        s.where[0] for s in out if s.where
    }
    return frame.select([c for c in frame.columns if c in needed]), out, pushed


SCHEMA_TYPES = {"expect_table_columns_to_match_set", "expect_column_to_exist"}


def is_schema_check(spec: CheckSpec) -> bool:
    """Checks that read column names only: run on a zero-row copy of the full table."""
    return spec.type in SCHEMA_TYPES
