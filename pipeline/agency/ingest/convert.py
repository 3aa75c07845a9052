"""Turn raw string columns into typed canonical columns, with one issue column per check.

Each check yields an expression that is a French reason (or null) for every row; `Issue` records
which raw column it concerns and what happens: the row is rejected, the value is ignored (nulled),
or the value is kept with a warning. Reasons never contain the raw value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from pipeline.agency.ingest.layout import ColumnSpec, Layout
from pipeline.agency.ingest.normalise.dates import WARNING_PARTIAL, date_exprs
from pipeline.agency.ingest.normalise.names import (
    clean_name,
    given_names,
    split_birth_usage,
    strip_leading_marker,
)
from pipeline.agency.ingest.normalise.nir import nir_exprs

REJECT = "ligne rejetée"
IGNORE = "valeur ignorée"
WARN = "avertissement"

R_MISSING = "valeur obligatoire absente"
R_PATTERN = "valeur mal formée"
R_ENUM = "valeur non reconnue (attendu : {values})"
R_UNKNOWN = "valeur non reconnue (attendu : {values}), gardée comme {code}"
R_AMOUNT = "montant illisible"
R_INT = "nombre entier illisible"
R_PHONE = "numéro de téléphone mal formé"
R_PLACEHOLDER = "nom ou prénom de remplissage (inconnu, X...) remplacé par vide"
R_LIST = "code de prestation non reconnu, retiré de la liste"


@dataclass(frozen=True)
class Issue:
    key: str  # name of the issue column in the working frame
    column: str  # raw (source) column name, as the data officer sees it
    action: str  # REJECT / IGNORE / WARN


@dataclass
class Conversion:
    """Expressions to evaluate on the raw frame: outputs first, then issue columns."""

    outputs: dict[str, pl.Expr]
    issues: list[tuple[Issue, pl.Expr]]
    prefix: str = "a"
    # Intermediate columns (names starting with "__t_") evaluated before the outputs.
    prepare: dict[str, pl.Expr] = field(default_factory=dict)

    def add_issue(self, spec_or_col: ColumnSpec | str, action: str, reason: pl.Expr) -> None:
        column = spec_or_col.source if isinstance(spec_or_col, ColumnSpec) else spec_or_col
        key = f"__issue_{self.prefix}{len(self.issues)}"
        self.issues.append((Issue(key, column, action), reason))


def _strip_accents_upper(e: pl.Expr) -> pl.Expr:
    return e.str.normalize("NFKD").str.replace_all(r"\p{M}", "").str.to_uppercase()


_BLANKS = [" ", "\t", "\u00a0", "\u202f"]


def _trimmed(raw: pl.Expr) -> pl.Expr:
    """Surrounding spaces removed; a blank value is null."""
    v = raw.str.strip_chars()
    return pl.when(v.str.len_bytes() > 0).then(v)


def _code(raw: pl.Expr, spec: ColumnSpec) -> tuple[pl.Expr, pl.Expr]:
    v = raw.str.replace_many(_BLANKS, [""] * len(_BLANKS)).str.to_uppercase()
    ok = v.str.contains(spec.pattern) if spec.pattern else pl.lit(True)
    return pl.when(ok).then(v), pl.when(v.is_not_null() & ~ok).then(pl.lit(R_PATTERN))


def _enum(raw: pl.Expr, spec: ColumnSpec) -> tuple[pl.Expr, pl.Expr]:
    v = _strip_accents_upper(raw)
    if spec.aliases:
        v = v.replace(spec.aliases)
    ok = v.is_in(list(spec.allowed))
    bad = v.is_not_null() & ~ok
    if spec.unknown_value:  # kept as the contract's "unknown" code, with a warning
        reason = R_UNKNOWN.format(values=", ".join(spec.allowed), code=spec.unknown_value)
        return pl.when(ok).then(v).when(bad).then(pl.lit(spec.unknown_value)), \
            pl.when(bad).then(pl.lit(reason))
    reason = R_ENUM.format(values=", ".join(spec.allowed))
    return pl.when(ok).then(v), pl.when(bad).then(pl.lit(reason))


def _bool(raw: pl.Expr, spec: ColumnSpec) -> tuple[pl.Expr, pl.Expr]:
    v = _strip_accents_upper(raw)
    out = (
        pl.when(v.is_in(list(spec.true_values))).then(pl.lit(True))
        .when(v.is_in(list(spec.false_values))).then(pl.lit(False))
    )
    values = "/".join(spec.true_values[:1] + spec.false_values[:1])
    return out, pl.when(v.is_not_null() & out.is_null()).then(pl.lit(R_ENUM.format(values=values)))


def _decimal(raw: pl.Expr, decimal: str) -> tuple[pl.Expr, pl.Expr]:
    v = raw.str.replace_all(r"[\s\u00a0\u202f]", "")
    thousands = "." if decimal == "," else ","
    t, d = "\\" + thousands, "\\" + decimal
    ok = v.str.contains(rf"^[+-]?(?:[0-9]+|[0-9]{{1,3}}(?:{t}[0-9]{{3}})+)(?:{d}[0-9]+)?$")
    number = v.str.replace_all(thousands, "", literal=True).str.replace(decimal, ".", literal=True)
    return (
        pl.when(ok).then(number.cast(pl.Float64, strict=False)),
        pl.when(v.is_not_null() & ~ok).then(pl.lit(R_AMOUNT)),
    )


def _int(raw: pl.Expr, spec: ColumnSpec) -> tuple[pl.Expr, pl.Expr]:
    v = raw.str.replace_all(r"\s", "")
    ok = v.str.contains(spec.pattern or r"^[0-9]+$")
    return (
        pl.when(ok).then(v.cast(pl.Int64, strict=False)),
        pl.when(v.is_not_null() & ~ok).then(pl.lit(R_INT)),
    )


def _phone(raw: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    junk = [*_BLANKS, ".", "-", "/", "(", ")"]
    v = raw.str.replace_many(junk, [""] * len(junk)).str.replace(r"^(?:\+33|0033)", "0")
    ok = v.str.contains(r"^\+?[0-9]{6,15}$")
    return pl.when(ok).then(v), pl.when(v.is_not_null() & ~ok).then(pl.lit(R_PHONE))


def _list(raw: pl.Expr, spec: ColumnSpec, sep: str) -> tuple[pl.Expr, pl.Expr]:
    items = _strip_accents_upper(raw).fill_null("").str.split(sep, literal=True).list.eval(
        pl.element().str.strip_chars()
    ).list.eval(pl.element().filter(pl.element().str.len_bytes() > 0))
    allowed = list(spec.allowed)
    known = items.list.eval(pl.element().filter(pl.element().is_in(allowed)))
    n_unknown = items.list.len() - known.list.len()
    return known.list.unique().list.sort(), pl.when(n_unknown > 0).then(pl.lit(R_LIST))


# Types whose values repeat a lot (names, dates, codes...): converted once per distinct value and
# joined back, which is much cheaper than normalising a million cells. NIRs, phones and addresses
# are nearly unique per row: converted in place.
_PER_DISTINCT_VALUE = frozenset({"code", "enum", "bool", "decimal", "int", "list", "name",
                                 "given_names", "date"})


@dataclass
class Group:
    """The conversion of one raw column: its outputs and issues depend on that column only."""

    column: str
    per_distinct_value: bool
    conv: Conversion


def build(layout: Layout) -> list[Group]:
    """Expressions for every layout column (the hot path: all vectorised)."""
    groups = []
    for spec in layout.columns:
        conv = Conversion(outputs={}, issues=[], prefix=f"{spec.name}_")
        # The trimmed value is an intermediate column: every check below reads it once.
        conv.prepare[f"__t_{spec.name}_v"] = _trimmed(pl.col(spec.name))
        raw = pl.col(f"__t_{spec.name}_v")
        out: pl.Expr
        reason: pl.Expr | None = None
        if spec.type == "code":
            out, reason = _code(raw, spec)
        elif spec.type == "enum":
            out, reason = _enum(raw, spec)
        elif spec.type == "bool":
            out, reason = _bool(raw, spec)
        elif spec.type == "decimal":
            out, reason = _decimal(raw, layout.decimal)
        elif spec.type == "int":
            out, reason = _int(raw, spec)
        elif spec.type == "phone":
            out, reason = _phone(raw)
        elif spec.type == "list":
            out, reason = _list(raw, spec, layout.list_separator)
        elif spec.type == "text":  # a quoted line break becomes a space
            out = pl.when(raw.str.contains("\n", literal=True)).then(
                raw.str.replace_all(r"\s*[\r\n]+\s*", " ")).otherwise(raw)
        elif spec.type == "name":
            cleaned = clean_name(raw)
            reason = pl.when(raw.is_not_null() & cleaned.is_null()).then(pl.lit(R_PLACEHOLDER))
            if spec.name == "nom_usage":  # "EP MARTIN" -> "MARTIN"
                out = strip_leading_marker(cleaned)
            else:  # "DUPONT EPOUSE MARTIN" -> birth name DUPONT, usage name MARTIN
                out, conv.outputs["__usage_from_birth"] = split_birth_usage(cleaned)
        elif spec.type == "given_names":
            out, prenom1 = given_names(raw)
            conv.outputs["prenom1"] = prenom1
            reason = pl.when(raw.is_not_null() & out.is_null()).then(pl.lit(R_PLACEHOLDER))
        elif spec.type == "nir":
            n = nir_exprs(raw, staged=f"__t_{spec.name}")
            conv.prepare.update(n.prepare)
            out, reason = n.nir, n.reason
            if spec.name == "nir":
                conv.outputs["nir_statut"] = n.statut
                conv.outputs["__nir_sexe"] = n.sex
        elif spec.type == "date":
            d = date_exprs(raw, layout.date_format)
            out, reason = d.date, d.reason
            if spec.name == "date_naissance":
                conv.outputs["naiss_annee"] = d.year
                conv.outputs["naiss_mois"] = d.month
                conv.outputs["naiss_jour"] = d.day
                conv.add_issue(spec, WARN, pl.when(d.partial).then(pl.lit(WARNING_PARTIAL)))
        else:  # pragma: no cover - layout.py refuses unknown types
            raise AssertionError(spec.type)
        conv.outputs[spec.name] = out
        if spec.mandatory:
            why = pl.when(raw.is_null()).then(pl.lit(R_MISSING))
            if reason is not None:
                why = pl.coalesce(why, reason)
            conv.add_issue(spec, REJECT, why)
        elif reason is not None:
            conv.add_issue(spec, WARN if spec.unknown_value else IGNORE, reason)
        groups.append(Group(spec.name, spec.type in _PER_DISTINCT_VALUE, conv))
    return groups


def _prepared(lf: pl.LazyFrame, prepare: dict[str, pl.Expr]) -> pl.LazyFrame:
    """Add intermediate columns one at a time: a later one may read an earlier one."""
    for k, e in prepare.items():
        lf = lf.with_columns(e.alias(k))
    return lf


# Above this share of distinct values, a lookup table saves nothing: convert in place.
MAX_DISTINCT_SHARE = 0.2


def _repetitive(values: pl.Series, sample: int = 20_000) -> bool:
    """Cheap guess from the first rows: are values repeated enough for a lookup table?"""
    head = values.head(sample)
    return head.n_unique() <= max(1000, MAX_DISTINCT_SHARE * head.len() * 2)


def apply(raw: pl.DataFrame, groups: list[Group]) -> pl.DataFrame:
    """Add every group's outputs and issue columns to `raw` (raw columns are replaced).

    An issue column that would be entirely null is left out (callers treat it as absent).

    Repetitive columns are converted once per distinct value, then mapped back through the
    value's index in an Enum of the distinct values (a hash lookup and a gather: much cheaper
    than an order-preserving join).
    """
    in_place: list[pl.Expr] = []
    prepare: dict[str, pl.Expr] = {}
    lookups: list[tuple[Group, list[str], pl.Series]] = []
    tables: list[pl.LazyFrame] = []
    for g in groups:
        named = [(k, e) for k, e in g.conv.outputs.items()]
        named += [(issue.key, e) for issue, e in g.conv.issues]
        if g.per_distinct_value and _repetitive(raw.get_column(g.column)):
            distinct = raw.get_column(g.column).unique().drop_nulls()
            if distinct.len() <= max(1000, MAX_DISTINCT_SHARE * raw.height):
                distinct = distinct.sort()
                keys = pl.DataFrame({g.column: distinct}).vstack(
                    pl.DataFrame({g.column: [None]}, schema={g.column: pl.String}))
                table = _prepared(keys.lazy(), g.conv.prepare)
                tables.append(table.select([e.alias(k) for k, e in named]))
                lookups.append((g, [k for k, _ in named], distinct))
                continue
        prepare.update(g.conv.prepare)
        in_place += [e.alias(k) for k, e in named]
    base = (
        _prepared(raw.lazy(), prepare)
        .with_columns(in_place)
        .drop([g.column for g, _, _ in lookups] + list(prepare))
    )
    computed = pl.collect_all([base, *tables])
    columns: list[pl.Series] = []
    for (g, names, distinct), table in zip(lookups, computed[1:], strict=True):
        # Index of each row's value among the distinct values; null -> the extra last row.
        index = raw.get_column(g.column).cast(pl.Enum(distinct)).to_physical()
        index = index.fill_null(distinct.len())
        for k in names:
            values = table.get_column(k)
            if k.startswith("__issue_") and values.null_count() == values.len():
                continue  # no distinct value has this issue: the column would be all null
            columns.append(values.gather(index).alias(k))
    return computed[0].with_columns(columns)
