"""Rule predicates bound before any data is read: a typo names its rule in French.

Each predicate is run, with the engine's own gate and view, against empty inputs that carry the
declared export columns (pipeline/central/detect/inputs.py, hence the features of
pipeline/shared/features.yaml): DuckDB parses and binds it, so an unknown column, a syntax error
or a type mismatch fails when the catalogue loads, not after the exports are loaded.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace

import duckdb
import polars as pl

from pipeline.common.errors import InputError
from pipeline.shared.rules import Rule, default_rules_path, load_rules


def _empty(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def check_predicates(rules: list[Rule], path: Path) -> None:
    """Raise InputError naming the first rule whose predicate DuckDB cannot bind."""
    from pipeline.central.detect import engine, inputs

    empty = inputs.CentralInputs(
        caf=_empty({**inputs.CAF_COLUMNS, **inputs.CAF_OPTIONAL}),
        cpam=_empty(inputs.CPAM_COLUMNS),
        links=_empty(inputs.LINK_COLUMNS),
        reference_date=dt.date(2000, 1, 1),
        warnings=(),
    )
    con = engine.connect(empty, SimpleNamespace(reference_date=empty.reference_date))
    try:
        for rule in rules:
            try:
                con.execute(f"SELECT count(*) FROM {rule.vue} WHERE ({rule.gate_sql()}) "
                            f"AND ({rule.predicate_sql()})").fetchall()
            except duckdb.Error as exc:
                reason = str(exc).splitlines()[0][:200]
                raise InputError(path, f"règle {rule.id} : prédicat invalide ({reason})",
                                 column="predicat") from exc
    finally:
        con.close()


_CHECKED: set[tuple[str, ...]] = set()


def load_checked_rules(path: Path | None = None) -> list[Rule]:
    """The rule catalogue as the central step runs it: parsed by the shared layer, then every
    predicate bound against empty inputs, once per distinct set of predicates in this process."""
    path = path or default_rules_path()
    rules = load_rules(path)
    key = tuple(f"{r.vue}|{r.gate_sql()}|{r.predicate_sql()}" for r in rules)
    if key not in _CHECKED:
        check_predicates(rules, path)
        _CHECKED.add(key)
    return rules
