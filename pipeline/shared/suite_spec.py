"""Expectation suites as versioned YAML data, expanded against one concrete table.

Suites live in `pipeline/shared/suites/<stage>.yaml` so an auditor can read (and a reviewer can
diff) exactly what is checked at each stage. This module is pure Python (no Great Expectations
import): it turns a suite file plus the table's column names and the run context into a flat list
of `CheckSpec`, one per (expectation, column). Expansion rules:

- `column` may be a name, a list of names, or a selector `{match, exclude, dtype: string}`
  evaluated on the table's columns (e.g. every `tok_*` column, every free-text column);
- `context_kwargs` replaces a kwarg by a context value when the caller provides it;
- `rate_of` turns `min_value` / `max_value` into counts by multiplying by a context value
  (e.g. the link rate), and skips the check when that value is absent;
- `value_set_from_context` checks membership in a set the caller passes (e.g. known handles);
- `allowed_columns` + `allowed_patterns` build the strict allow-list for
  `expect_table_columns_to_match_set`; `context["allowed_columns"]` (from the convention)
  replaces it;
- `required_columns` checks presence only (`exact_match: false`), in one table-level check;
- `where: {column, equals}` restricts a check to the rows where that column has that value;
- `regex_list_from` names pattern lists of `suites/_patterns.yaml`;
- `value_set_from_catalogue` takes the value set from a project catalogue (CATALOGUES, e.g. the
  pass names of pipeline/shared/comparisons.yaml), or from the context key of the same name.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, Literal

from pipeline.common import yaml_safe
from pipeline.common.errors import PipelineError

Severity = Literal["critical", "warning"]
ColumnKind = Literal["string", "other"]

PATTERNS_FILE = "_patterns.yaml"


def _match_passes() -> list[str]:
    from pipeline.shared.linkage_model import load_config

    return load_config().pass_names()


# Value sets declared in another file, read from it rather than copied into a suite.
def _providers() -> list[str]:
    from pipeline.shared.providers import PROVIDERS

    return list(PROVIDERS)


CATALOGUES = {"match_passes": _match_passes, "fournisseurs": _providers}


@dataclass(frozen=True)
class CheckSpec:
    """One concrete check: a GE expectation type with its final kwargs, on at most one column."""

    key: str
    suite_id: str
    type: str
    severity: Severity
    label: str
    column: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    # Set when the check runs on a derived column (e.g. `caf_handle__connu`) but must be
    # reported under the original one.
    report_column: str | None = None
    # Context key holding the set of allowed values for a membership check.
    context_set: str | None = None
    # Row filter (column, value): the check applies only to rows where column == value.
    where: tuple[str, Any] | None = None
    # Set when the check cannot run (missing context or column): reported as "non évaluée".
    skipped: str | None = None


@dataclass(frozen=True)
class CrossCheckSpec:
    """A check across tables that GE cannot express on one batch (computed in the validator)."""

    key: str
    check: str
    severity: Severity
    label: str


@dataclass(frozen=True)
class Suite:
    stage: str
    version: int
    description: str
    expectations: tuple[dict[str, Any], ...]
    cross_checks: tuple[CrossCheckSpec, ...]


def _suites_dir() -> Traversable:
    return resources.files("pipeline.shared").joinpath("suites")


def available_stages() -> list[str]:
    """Stage names that have a suite file, sorted."""
    root = _suites_dir()
    return sorted(
        p.name.removesuffix(".yaml")
        for p in root.iterdir()
        if p.name.endswith(".yaml") and not p.name.startswith("_")
    )


@cache
def load_suite(stage: str) -> Suite:
    """Read and sanity-check `suites/<stage>.yaml`."""
    if stage not in available_stages():
        known = ", ".join(available_stages())
        raise PipelineError(f"étape de validation inconnue : « {stage} » (connues : {known})")
    text = _suites_dir().joinpath(f"{stage}.yaml").read_text(encoding="utf-8")
    raw = yaml_safe.load(text)
    exps = tuple(raw.get("expectations") or ())
    seen: set[str] = set()
    for e in exps:
        for k in ("id", "type", "severity", "label"):
            if k not in e:
                raise PipelineError(f"suite {stage} : attente sans champ « {k} »")
        if e["severity"] not in ("critical", "warning"):
            raise PipelineError(f"suite {stage}, {e['id']} : sévérité inconnue")
        if e["id"] in seen:
            raise PipelineError(f"suite {stage} : identifiant « {e['id']} » en double")
        seen.add(e["id"])
    crosses = tuple(
        CrossCheckSpec(key=c["id"], check=c["check"], severity=c["severity"], label=c["label"])
        for c in raw.get("cross_checks") or ()
    )
    return Suite(
        stage=raw["stage"],
        version=int(raw["version"]),
        description=raw.get("description", stage),
        expectations=exps,
        cross_checks=crosses,
    )


@cache
def load_patterns() -> dict[str, tuple[str, ...]]:
    text = _suites_dir().joinpath(PATTERNS_FILE).read_text(encoding="utf-8")
    return {k: tuple(v) for k, v in yaml_safe.load(text).items()}


def _select_columns(selector: Any, columns: dict[str, ColumnKind]) -> list[str]:
    if selector is None:
        return []
    if isinstance(selector, str):
        return [selector]
    if isinstance(selector, list):
        return [str(c) for c in selector]
    match = re.compile(selector.get("match", ".*"))
    exclude = re.compile(selector["exclude"]) if "exclude" in selector else None
    dtype = selector.get("dtype")
    return sorted(
        c
        for c, kind in columns.items()
        if match.search(c)
        and not (exclude and exclude.search(c))
        and (dtype is None or dtype == kind)
        and "__" not in c  # derived helper columns are never selected implicitly
    )


def _column_set(e: dict[str, Any], columns: dict[str, ColumnKind], context: dict) -> list[str]:
    if context.get("allowed_columns") is not None:
        allowed = {str(c) for c in context["allowed_columns"]}
    else:
        allowed = set(e.get("allowed_columns", ()))
        patterns = [re.compile(p) for p in e.get("allowed_patterns", ())]
        allowed |= {c for c in columns if any(p.search(c) for p in patterns)}
    # Derived helper columns (list lengths, membership flags) are added by the validator itself.
    allowed |= {c for c in columns if "__" in c}
    return sorted(allowed)


def expand(
    suite: Suite, columns: dict[str, ColumnKind], context: dict | None = None
) -> list[CheckSpec]:
    """Turn the suite into concrete checks for a table with these columns (name -> kind)."""
    context = context or {}
    patterns = load_patterns()
    specs: list[CheckSpec] = []
    for e in suite.expectations:
        kwargs: dict[str, Any] = dict(e.get("kwargs") or {})
        skipped: str | None = None
        for kwarg, ctx_key in (e.get("context_kwargs") or {}).items():
            if context.get(ctx_key) is not None:
                kwargs[kwarg] = context[ctx_key]
        if "value_set_from_catalogue" in e:
            key = e["value_set_from_catalogue"]
            if key not in CATALOGUES:
                raise PipelineError(f"suite {suite.stage} : catalogue inconnu « {key} » "
                                    f"(connus : {', '.join(sorted(CATALOGUES))})")
            kwargs["value_set"] = list(context.get(key) or CATALOGUES[key]())
        if "regex_list_from" in e:
            names = e["regex_list_from"]
            names = [names] if isinstance(names, str) else names
            kwargs["regex_list"] = [p for n in names for p in patterns[n]]
        if e["type"] == "expect_table_columns_to_match_set":
            if "required_columns" in e:  # presence only: "at least these columns"
                kwargs["column_set"] = sorted(e["required_columns"])
                kwargs["exact_match"] = False
            else:  # strict allow-list
                kwargs["column_set"] = _column_set(e, columns, context)
                kwargs.setdefault("exact_match", True)
        if "rate_of" in e:
            denom = context.get(e["rate_of"])
            if denom is None:
                skipped = f"contexte absent : {e['rate_of']}"
            else:
                if kwargs.get("min_value") is not None:
                    kwargs["min_value"] = math.floor(float(kwargs["min_value"]) * float(denom))
                if kwargs.get("max_value") is not None:
                    kwargs["max_value"] = math.ceil(float(kwargs["max_value"]) * float(denom))
        where = e.get("where")
        base = dict(
            suite_id=e["id"], type=e["type"], severity=e["severity"], label=e["label"],
            where=(where["column"], where["equals"]) if where else None,
        )
        selected = _select_columns(e.get("column"), columns)
        if "column" not in e:
            specs.append(CheckSpec(key=e["id"], kwargs=kwargs, skipped=skipped, **base))
            continue
        for col in selected:
            col_kwargs = dict(kwargs)
            col_skip = skipped
            run_col = col
            report_col = None
            ctx_set = None
            if col not in columns and e["type"] != "expect_column_to_exist":
                col_skip = col_skip or "colonne absente"
            if where and where["column"] not in columns:
                col_skip = col_skip or f"colonne absente : {where['column']}"
            if "value_set_from_context" in e:
                ctx_key = e["value_set_from_context"]
                if context.get(ctx_key) is None:
                    col_skip = col_skip or f"contexte absent : {ctx_key}"
                # The validator computes `<col>__connu` (membership, in polars) so that a set of
                # a million handles never goes through GE's kwargs serialisation.
                run_col, report_col, ctx_set = f"{col}__connu", col, ctx_key
                col_kwargs["value_set"] = [True]
            specs.append(
                CheckSpec(
                    key=f"{e['id']}:{col}", column=run_col, report_column=report_col,
                    context_set=ctx_set,
                    kwargs=col_kwargs, skipped=col_skip, **base,
                )
            )
    return specs
