"""Run a stage's expectation suite with Great Expectations and keep only what is safe to publish.

GE's own results quote offending values (`partial_unexpected_list`); those may be NIRs or names,
so they never leave this module: `validation/<stage>.json` keeps counts, percentages and column
names only, and every message is built here, in French, from the suite's label. The output is
deterministic (no GE run ids or timestamps) so that reruns are byte-identical.

Two engines evaluate the same specs: `polars` (native.py, the default: GE's import alone costs
5–20 s, more than the whole central step's budget) and `great_expectations` (the reference, imported
lazily with analytics and progress bars off). tests/report asserts both give identical records.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from pipeline.central.report.crosschecks import run_cross_check
from pipeline.central.report.native import run_polars
from pipeline.central.report.pushdown import DEFAULT_PUSHDOWN_ROWS, is_schema_check, pushdown
from pipeline.common.errors import PipelineError
from pipeline.common.files import write_text
from pipeline.common.french import integer
from pipeline.shared.suite_spec import CheckSpec, ColumnKind, expand, load_suite

if TYPE_CHECKING:
    import pandas as pd

RESULTS_SCHEMA_VERSION = 1
ENGINES = ("polars", "great_expectations")
DEFAULT_ENGINE = "polars"
_TABLE_LEVEL = {
    "expect_table_row_count_to_be_between",
    "expect_table_columns_to_match_set",
    "expect_column_unique_value_count_to_be_between",
    "expect_compound_columns_to_be_unique",
    "expect_column_pair_values_a_to_be_greater_than_b",
}


_NULL_CHECKS = {"expect_column_values_to_not_be_null", "expect_column_values_to_be_null"}


# Other spellings of the stage names, so that callers can use either.
STAGE_ALIASES = {
    "pseudo_caf": "caf_export", "pseudo_cpam": "cpam_export",
    "raw_caf": "caf_raw", "raw_cpam": "cpam_raw",
    "ingested_caf": "caf_ingested", "ingested_cpam": "cpam_ingested",
    "clerical": "clerical_review",
}


def canonical_stage(stage: str) -> str:
    return STAGE_ALIASES.get(stage, stage)


def _normalise_context(context: dict | None) -> dict:
    """Derive `link_denominator` from `caf_rows` / `cpam_rows` when not given directly."""
    ctx = dict(context or {})
    if ctx.get("link_denominator") is None:
        rows = [ctx.get(k) for k in ("caf_rows", "cpam_rows") if ctx.get(k) is not None]
        if rows:
            ctx["link_denominator"] = min(int(r) for r in rows)
    return ctx


@dataclass(frozen=True)
class ValidationOutcome:
    """What a stage needs to decide whether to go on, and what the report shows."""

    stage: str
    success: bool
    critical_failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    results_path: Path = Path()
    evaluated: int = 0
    passed: int = 0
    skipped: int = 0

    def as_facts(self) -> dict[str, Any]:
        """The `ValidationFacts` entry of the report (see facts.py)."""
        return {
            "stage": self.stage,
            "success": self.success,
            "critical_failures": list(self.critical_failures),
            "warnings": list(self.warnings),
            "evaluated": self.evaluated,
            "passed": self.passed,
            "skipped": self.skipped,
            "results_path": str(self.results_path),
        }


def _gx() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("GE_USAGE_STATISTICS_URL", "")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    import great_expectations as gx

    return gx


def _prepare(df: pd.DataFrame | pl.DataFrame) -> tuple[pl.DataFrame, dict[str, ColumnKind]]:
    """Polars frame where list columns become comma-joined text plus a `<col>__nb` length."""
    frame = df if isinstance(df, pl.DataFrame) else _from_pandas(df)
    if not isinstance(frame, pl.DataFrame):
        raise PipelineError("validation : un DataFrame pandas ou polars est attendu")
    extra: list[pl.Expr] = []
    replace: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.List):
            inner = pl.col(name).list.eval(pl.element().cast(pl.String))
            replace.append(inner.list.join(",").alias(name))
            extra.append(pl.col(name).list.len().cast(pl.Int64).alias(f"{name}__nb"))
    if extra:
        frame = frame.with_columns(*extra).with_columns(*replace)
    kinds: dict[str, ColumnKind] = {
        n: ("string" if d in (pl.String, pl.Categorical) or isinstance(d, pl.Enum) else "other")
        for n, d in frame.schema.items()
    }
    return frame, kinds


def _from_pandas(df: Any) -> pl.DataFrame:
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise PipelineError("validation : un DataFrame pandas ou polars est attendu")
    return pl.from_pandas(df)


def _add_membership(frame: pl.DataFrame, specs: list[CheckSpec], context: dict) -> pl.DataFrame:
    """Add `<col>__connu` flags (membership in a context set), computed in polars."""
    exprs = []
    for s in specs:
        if s.context_set and not s.skipped and s.column not in frame.columns:
            known = pl.Series(values=sorted(map(str, context[s.context_set])), dtype=pl.String)
            exprs.append(
                pl.col(s.report_column).cast(pl.String).is_in(known.implode()).alias(s.column)
            )
    return frame.with_columns(*exprs) if exprs else frame


_RUN_COUNTER = itertools.count(1)


@functools.cache
def _context() -> Any:
    """One in-memory GE context per process (creating one costs time and a temp folder)."""
    gx = _gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return ctx


def _camel(type_name: str) -> str:
    return "".join(part.capitalize() for part in type_name.split("_"))


def _run_ge(stage: str, frame: pl.DataFrame, specs: list[CheckSpec]) -> dict[str, dict[str, Any]]:
    """Validate with GE; return {spec.key: GE result (stripped of values)}."""
    runnable = [s for s in specs if not s.skipped]
    if not runnable:
        return {}
    gx = _gx()
    ctx = _context()
    name = f"nonrecours_{stage}_{next(_RUN_COUNTER)}"
    batch_def = (
        ctx.data_sources.add_pandas(name)
        .add_dataframe_asset(stage)
        .add_batch_definition_whole_dataframe("table")
    )
    suite = gx.ExpectationSuite(name=name)
    for s in runnable:
        cls = getattr(gx.expectations, _camel(s.type), None)
        if cls is None:
            raise PipelineError(f"suite {stage} : type d'attente inconnu « {s.type} »")
        kwargs = dict(s.kwargs)
        if s.column is not None:
            kwargs["column"] = s.column
        if s.type == "expect_table_columns_to_match_set" and kwargs.get("exact_match"):
            # Helper columns added by this module (flags, lengths) are not data columns.
            kwargs["column_set"] = sorted(
                set(kwargs["column_set"]) | {c for c in frame.columns if "__" in c}
            )
        if s.where is not None:
            from great_expectations.expectations.row_conditions import Column

            kwargs["row_condition"] = Column(s.where[0]) == s.where[1]
        try:
            exp = cls(**kwargs, severity=s.severity, meta={"key": s.key, "severity": s.severity})
        except Exception as exc:  # pydantic validation of the suite file's kwargs
            raise PipelineError(
                f"suite {stage}, attente « {s.key} » : paramètres invalides ({type(exc).__name__})"
            ) from exc
        suite.add_expectation(exp)
    suite = ctx.suites.add(suite)
    vd = ctx.validation_definitions.add(
        gx.ValidationDefinition(name=name, data=batch_def, suite=suite)
    )
    result = vd.run(batch_parameters={"dataframe": frame.to_pandas()}, result_format="BASIC")
    out: dict[str, dict[str, Any]] = {}
    for r in result.to_json_dict()["results"]:
        key = r["expectation_config"]["meta"]["key"]
        res = dict(r.get("result") or {})
        res.pop("partial_unexpected_list", None)
        res.pop("partial_unexpected_counts", None)
        res.pop("partial_unexpected_index_list", None)
        out[key] = {
            "success": bool(r["success"]),
            "result": res,
            "exception": bool((r.get("exception_info") or {}).get("raised_exception")),
        }
    return out


def _fmt_pct(x: float) -> str:
    return f"{x:.2f}".replace(".", ",") + " %"


def _describe(stage: str, spec: CheckSpec, res: dict[str, Any]) -> str:
    """French failure message from counts only; never quotes a data value."""
    col = spec.report_column or spec.column
    where = f"{stage} · {spec.label}" + (f" (colonne « {col} »)" if col else "")
    r = res.get("result", {})
    if res.get("exception"):
        return f"{where} : vérification impossible (erreur pendant la validation)"
    if spec.type == "expect_column_to_exist":
        return f"{where} : colonne absente"
    if spec.type == "expect_table_columns_to_match_set":
        mism = (r.get("details") or {}).get("mismatched") or {}
        parts = []
        names = (("unexpected", "colonnes non autorisées"), ("missing", "colonnes manquantes"))
        if spec.kwargs.get("exact_match") is False:  # presence check: extras are fine
            names = names[1:]
        for k, what in names:
            if mism.get(k):
                parts.append(f"{what} : " + ", ".join(sorted(map(str, mism[k]))))
        return f"{where} : " + (" ; ".join(parts) or "jeu de colonnes différent")
    if spec.type in ("expect_table_row_count_to_be_between",
                     "expect_column_unique_value_count_to_be_between"):
        lo, hi = spec.kwargs.get("min_value"), spec.kwargs.get("max_value")
        if lo is not None and hi is not None:
            bounds = f"attendu entre {integer(lo)} et {integer(hi)}"
        else:
            bounds = (f"attendu au moins {integer(lo)}" if lo is not None
                      else f"attendu au plus {integer(hi)}")
        what = "lignes" if spec.type.startswith("expect_table") else "valeurs distinctes"
        obs = r.get("observed_value")
        return f"{where} : {integer(int(obs)) if obs is not None else '?'} {what}, {bounds}"
    if "unexpected_count" in r:
        # GE's percentage is over the non-missing values: so is the count it is quoted with.
        n, total = int(r["unexpected_count"]), int(r.get("element_count") or 0)
        missing = int(r.get("missing_count") or 0) if spec.type not in _NULL_CHECKS else 0
        pct = float(r.get("unexpected_percent") or 0.0)
        return (f"{where} : {integer(n)} valeur(s) non conforme(s) sur "
                f"{integer(total - missing)} ({_fmt_pct(pct)})"
                + (f", {integer(missing)} vide(s) non comptée(s)" if missing else ""))
    return f"{where} : non conforme"


def _bounds(k: dict[str, Any], unit: str) -> str:
    lo, hi = k.get("min_value"), k.get("max_value")
    if lo is not None and hi is not None:
        return f"entre {integer(lo) if isinstance(lo, int) else lo} et " \
               f"{integer(hi) if isinstance(hi, int) else hi}{unit}"
    if lo is not None:
        return f"au moins {integer(lo) if isinstance(lo, int) else lo}{unit}"
    return f"au plus {integer(hi) if isinstance(hi, int) else hi}{unit}" if hi is not None else ""


def _expected(spec: CheckSpec) -> str:
    """What the check expects, in French, from the suite and the run context (never data)."""
    k, t = spec.kwargs, spec.type
    if spec.context_set:
        text = f"valeur présente dans le jeu de référence « {spec.context_set} »"
    elif t == "expect_column_values_to_be_in_set":
        text = "valeurs parmi " + ", ".join(map(str, k.get("value_set", [])))
    elif t == "expect_column_values_to_match_regex":
        text = f"format {k.get('regex')}"
    elif t == "expect_column_values_to_not_match_regex_list":
        text = f"aucune valeur reconnue par {len(k.get('regex_list', []))} motif(s) interdits"
    elif t == "expect_column_values_to_be_between":
        text = "valeurs " + _bounds(k, "")
    elif t == "expect_column_values_to_be_unique":
        text = "valeurs uniques"
    elif t == "expect_column_values_to_not_be_null":
        text = "valeur renseignée"
    elif t == "expect_column_values_to_be_null":
        text = "valeur vide"
    elif t == "expect_table_row_count_to_be_between":
        text = _bounds(k, " lignes")
    elif t == "expect_column_unique_value_count_to_be_between":
        text = _bounds(k, " valeur(s) distincte(s)")
    elif t == "expect_table_columns_to_match_set":
        cols = k.get("column_set", [])
        text = (f"au plus ces {len(cols)} colonnes autorisées" if k.get("exact_match", True)
                else "colonnes présentes : " + ", ".join(cols))
    elif t == "expect_compound_columns_to_be_unique":
        text = "combinaison unique de " + ", ".join(k.get("column_list", []))
    elif t == "expect_column_pair_values_a_to_be_greater_than_b":
        op = "≥" if k.get("or_equal") else ">"
        text = f"{k.get('column_A')} {op} {k.get('column_B')}"
    else:
        text = t
    if k.get("mostly") is not None and float(k["mostly"]) < 1:
        text += f" (au moins {_fmt_pct(float(k['mostly']) * 100)} des valeurs)"
    if spec.where is not None:
        text += f", lorsque {spec.where[0]} = {spec.where[1]}"
    return text


def _check_record(
    stage: str, spec: CheckSpec, res: dict[str, Any] | None, engine: str
) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "key": spec.key,
        "id": spec.suite_id,
        "type": spec.type,
        "column": spec.report_column or spec.column,
        "severity": spec.severity,
        "label": spec.label,
        "expected": _expected(spec),
    }
    if spec.skipped or res is None:
        rec.update(evaluated=False, success=None, message=f"non évaluée ({spec.skipped})")
        return rec
    r = res.get("result", {})
    rec.update(evaluated=True, success=res["success"], engine=engine)
    for k in ("element_count", "unexpected_count", "missing_count"):
        if k in r:
            rec[k] = int(r[k])
    if spec.type == "expect_column_values_to_not_be_null":
        rec.pop("missing_count", None)  # the missing values are the unexpected ones here
    if "unexpected_percent" in r and r["unexpected_percent"] is not None:
        rec["unexpected_percent"] = round(float(r["unexpected_percent"]), 4)
    if spec.type in _TABLE_LEVEL and isinstance(r.get("observed_value"), int | float):
        rec["observed_value"] = r["observed_value"]
    if spec.type == "expect_table_columns_to_match_set":
        mism = (r.get("details") or {}).get("mismatched") or {}
        if spec.kwargs.get("exact_match") is not False:
            rec["unexpected_columns"] = sorted(map(str, mism.get("unexpected") or []))
        rec["missing_columns"] = sorted(map(str, mism.get("missing") or []))
    rec["message"] = "conforme" if res["success"] else _describe(stage, spec, res)
    return rec


def validate(
    stage: str,
    df: pd.DataFrame | pl.DataFrame,
    out_dir: Path,
    *,
    context: dict | None = None,
    engine: str = DEFAULT_ENGINE,
) -> ValidationOutcome:
    """Validate `df` against the suite of `stage`; write `out_dir/validation/<stage>.json`.

    `context` tunes the suite for this run (all keys optional): `expected_rows_min/max`,
    `allowed_columns` (from the convention), `link_denominator` (else the smaller of
    `caf_rows` / `cpam_rows`), `link_rate_min/max`,
    `caf_handles` / `cpam_handles` (iterables of known handles), `aggregates` (the
    aggregates.csv frame, for targets), `pushdown_rows` (row count from which row predicates
    are evaluated in polars, see pushdown.py). Checks whose context is absent are reported as
    "non évaluée", never silently passed. `engine` is one of ENGINES (see the module docstring).
    """
    if engine not in ENGINES:
        raise PipelineError(f"moteur de validation inconnu : « {engine} » ({', '.join(ENGINES)})")
    stage = canonical_stage(stage)
    context = _normalise_context(context)
    suite = load_suite(stage)
    frame, kinds = _prepare(df)
    specs = expand(suite, kinds, context)
    frame = _add_membership(frame, specs, context)
    threshold = int(context.get("pushdown_rows", DEFAULT_PUSHDOWN_ROWS))
    if engine == "polars":
        pushed = set()
        ge_results = run_polars(stage, frame, specs)
    elif frame.height >= threshold:
        narrow, ge_specs, pushed = pushdown(frame, specs)
        ge_results = _run_ge(stage, frame.clear(), [s for s in ge_specs if is_schema_check(s)])
        ge_results |= _run_ge(stage, narrow, [s for s in ge_specs if not is_schema_check(s)])
    else:
        pushed = set()
        ge_results = _run_ge(stage, frame, specs)

    checks = [
        _check_record(stage, s, ge_results.get(s.key),
                      "polars+great_expectations" if s.key in pushed else engine)
        for s in specs
    ]
    for cross in suite.cross_checks:
        checks.append(run_cross_check(stage, cross, frame, context))

    failed = [c for c in checks if c["success"] is False]
    critical = [c["message"] for c in failed if c["severity"] == "critical"]
    warnings = [c["message"] for c in failed if c["severity"] == "warning"]
    evaluated = sum(1 for c in checks if c["evaluated"])
    passed = sum(1 for c in checks if c["success"] is True)
    skipped = sum(1 for c in checks if not c["evaluated"])
    success = not critical
    doc = {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "stage": stage,
        "description": suite.description,
        "suite_version": suite.version,
        "engine": engine,
        "great_expectations": _gx_version(),
        "rows": frame.height,
        "pushdown_rows": threshold,
        "success": success,
        "statistics": {
            "evaluated": evaluated, "passed": passed, "skipped": skipped,
            "critical_failures": len(critical), "warnings": len(warnings),
        },
        "critical_failures": critical,
        "warnings": warnings,
        "checks": checks,
    }
    path = Path(out_dir) / "validation" / f"{stage}.json"
    write_text(path, json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
    return ValidationOutcome(
        stage=stage, success=success, critical_failures=critical, warnings=warnings,
        results_path=path, evaluated=evaluated, passed=passed, skipped=skipped,
    )


def _gx_version() -> str:
    from importlib.metadata import version

    return version("great-expectations")


def raise_on_critical(outcome: ValidationOutcome) -> None:
    """Stop the run when a critical expectation failed; the message lists the failures."""
    if outcome.success:
        return
    shown = outcome.critical_failures[:10]
    more = len(outcome.critical_failures) - len(shown)
    lines = "\n  - ".join(shown)
    tail = f"\n  (et {more} autre(s))" if more > 0 else ""
    raise PipelineError(
        f"Validation « {outcome.stage} » : {len(outcome.critical_failures)} contrôle(s) "
        f"critique(s) en échec ; détail dans {outcome.results_path}\n  - {lines}{tail}"
    )
