"""Household (dossier) consistency rules, declared in the layout under `dossier:`.

A row can be valid on its own and still describe an impossible household: two applicants, a
couple declared "isolé", a child older than its parents, a person listed twice. Detection
computes household sizes and ceilings from these rows, so such a dossier would give a wrong CCAS
list. Each rule names a check (count, duplicate, same_value, child_age), its parameters, a French
`motif` and an action: `rejet` (the rows concerned are rejected, e.g. the second copy of a
duplicated person) or `quarantaine` (every row of the dossier is held back, in quarantaine.csv).
Row conditions are polars SQL expressions over the typed columns plus `rejete` (the row was
rejected by the row checks: unreadable, ragged...). All checks are columnar (window expressions
and group-bys), never a loop over rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.common.errors import InputError

REJECT_RULE = "rejet"
QUARANTINE = "quarantaine"
CHECKS = ("count", "duplicate", "same_value", "child_age")
DOSSIER = "__dossier"
REJECTED = "rejete"  # name of the "row already rejected" column in rule conditions

QUARANTINE_SCHEMA = {"line": pl.Int64, "dossier": pl.Int64, "regle": pl.String,
                     "motif": pl.String}


@dataclass(frozen=True)
class Rule:
    """One consistency rule of the layout."""

    id: str
    check: str
    action: str
    motif: str
    rows: str | None = None  # count: SQL condition selecting the rows counted
    min: int | None = None
    max: int | None = None
    columns: tuple[str, ...] = ()  # duplicate / same_value
    child: str | None = None  # child_age: SQL conditions for child and parent rows
    parent: str | None = None
    min_gap_years: int = 0


@dataclass(frozen=True)
class HouseholdSpec:
    key: str  # canonical column grouping the rows of one dossier
    rules: tuple[Rule, ...]


def _bad(path: Path, reason: str, rule: str | None = None) -> InputError:
    where = f"règle « {rule} » : " if rule else ""
    return InputError(path, f"disposition (layout) invalide, dossier : {where}{reason}")


def load_household(path: Path, data: object, columns: list[str]) -> HouseholdSpec | None:
    """Parse the `dossier:` block of a layout (None when the layout declares no rules)."""
    if data is None:
        return None
    if not isinstance(data, dict) or data.get("key") not in columns:
        raise _bad(path, "« key » doit nommer une colonne canonique")
    rules, seen = [], set()
    for raw in data.get("rules") or []:
        rule = _rule(path, raw, columns)
        if rule.id in seen:
            raise _bad(path, "identifiant utilisé deux fois", rule.id)
        seen.add(rule.id)
        rules.append(rule)
    return HouseholdSpec(key=str(data["key"]), rules=tuple(rules))


def _rule(path: Path, raw: object, columns: list[str]) -> Rule:
    if not isinstance(raw, dict) or not raw.get("id") or not raw.get("motif"):
        raise _bad(path, "chaque règle doit avoir « id » et « motif »")
    rid = str(raw["id"])
    check, action = raw.get("check"), raw.get("action")
    if check not in CHECKS:
        raise _bad(path, f"« check » parmi {', '.join(CHECKS)}", rid)
    if action not in (REJECT_RULE, QUARANTINE):
        raise _bad(path, f"« action » vaut {REJECT_RULE} ou {QUARANTINE}", rid)
    cols = tuple(str(c) for c in raw.get("columns") or ())
    unknown = [c for c in cols if c not in columns]
    if unknown:
        raise _bad(path, f"colonne inconnue : {', '.join(unknown)}", rid)
    if check in ("duplicate", "same_value") and not cols:
        raise _bad(path, "« columns » est requis", rid)
    if check == "count" and (not raw.get("rows") or (raw.get("min") is None
                                                     and raw.get("max") is None)):
        raise _bad(path, "« rows » et « min » ou « max » sont requis", rid)
    if check == "child_age" and not (raw.get("child") and raw.get("parent")):
        raise _bad(path, "« child » et « parent » sont requis", rid)
    if action == REJECT_RULE and not (check == "duplicate" or (check == "count"
                                                              and raw.get("max") == 0)):
        raise _bad(path, "le rejet de lignes ne vaut que pour duplicate ou count avec max: 0", rid)
    rule = Rule(
        id=rid, check=check, action=action, motif=str(raw["motif"]),
        rows=raw.get("rows"), min=raw.get("min"), max=raw.get("max"), columns=cols,
        child=raw.get("child"), parent=raw.get("parent"),
        min_gap_years=int(raw.get("min_gap_years", 0)),
    )
    for condition in (rule.rows, rule.child, rule.parent):
        if condition is not None:
            try:
                pl.sql_expr(condition)
            except Exception:  # polars raises several SQL error types
                raise _bad(path, "condition SQL illisible", rid) from None
    return rule


@dataclass(frozen=True)
class Outcome:
    """What the rules decided, by line: rejected rows and quarantined dossiers."""

    rejected: pl.DataFrame  # line, reason, regle (rows rejected by a `rejet` rule)
    quarantine: pl.DataFrame  # QUARANTINE_SCHEMA, one row per (line, rule)
    counts: dict[str, dict[str, int]]  # rule id -> {"dossiers": n, "lignes": n}


def _condition(sql: str) -> pl.Expr:
    return pl.sql_expr(sql).fill_null(False)


def _violations(lf: pl.LazyFrame, rule: Rule) -> tuple[pl.LazyFrame, pl.LazyFrame | None]:
    """(dossiers violating the rule, rows to reject or None).

    Counting rules group only the rows that match (few), not the whole frame."""
    live = lf.filter(~pl.col("__removed"))
    if rule.check == "count":
        base = lf.filter(~pl.col("__removed_by_rule"))
        hits = base.filter(_condition(rule.rows or "false"))
        n = hits.group_by(DOSSIER).agg(n=pl.len())
        if rule.min:  # dossiers with no matching row count too
            n = base.select(DOSSIER).unique().join(n, on=DOSSIER, how="left")
            n = n.with_columns(pl.col("n").fill_null(0))
        bad = pl.lit(False)
        if rule.min is not None:
            bad = bad | (pl.col("n") < rule.min)
        if rule.max is not None:
            bad = bad | (pl.col("n") > rule.max)
        dossiers = n.filter(bad).select(DOSSIER)
        rows = (hits.join(dossiers, on=DOSSIER, how="semi").select("line")
                if rule.action == REJECT_RULE else None)
        return dossiers, rows
    if rule.check == "duplicate":
        keys = [DOSSIER, *rule.columns]
        complete = live.filter(pl.all_horizontal(pl.col(c).is_not_null() for c in rule.columns))
        # A 64-bit hash narrows the rows cheaply; the exact comparison runs on the few left.
        candidates = complete.filter(pl.struct(keys).hash().is_duplicated())
        copies = candidates.filter(pl.col("line").rank("ordinal").over(keys) > 1)
        return copies.select(DOSSIER).unique(), copies.select("line")
    if rule.check == "same_value":  # null counts as a value: a blank on one row is a difference
        spread = live.group_by(DOSSIER).agg(pl.col(c).n_unique() for c in rule.columns)
        return spread.filter(pl.any_horizontal(pl.col(c) > 1 for c in rule.columns)).select(
            DOSSIER), None
    # child_age: a child born before the oldest parent's `min_gap_years`-th birthday.
    born = pl.col("date_naissance")
    parents = live.filter(_condition(rule.parent or "false")).group_by(DOSSIER).agg(
        limit=born.min().dt.offset_by(f"{rule.min_gap_years}y"))
    young = live.filter(_condition(rule.child or "false")).join(parents, on=DOSSIER)
    return young.filter(born < pl.col("limit")).select(DOSSIER).unique(), None


def apply(df: pl.DataFrame, spec: HouseholdSpec, rejected: pl.Expr) -> Outcome:
    """Run the rules on the typed frame (every row, `rejected` marking rows already rejected)."""
    # Integer dossier id (group-bys and windows hash it much faster than a string); a row
    # without a readable key is a dossier of its own.
    key_id = pl.col(spec.key).cast(pl.String).cast(pl.Categorical).to_physical().cast(pl.Int64)
    frame = df.with_columns(
        rejected.alias(REJECTED),
        pl.when(pl.col(spec.key).is_not_null()).then(key_id).otherwise(-pl.col("line"))
        .alias(DOSSIER),
    ).with_columns(
        pl.col(REJECTED).alias("__removed"), pl.lit(False).alias("__removed_by_rule"))
    lf = frame.lazy()
    rule_rejected: list[pl.DataFrame] = []
    flagged: list[pl.LazyFrame] = []
    for rule in spec.rules:
        dossiers, rows = _violations(lf, rule)
        if rule.action == REJECT_RULE and rows is not None:
            lines = rows.collect()
            rule_rejected.append(lines.with_columns(reason=pl.lit(rule.motif),
                                                    regle=pl.lit(rule.id)))
            gone = pl.col("line").is_in(lines["line"].implode())
            frame = frame.with_columns(__removed=pl.col("__removed") | gone,
                                       __removed_by_rule=pl.col("__removed_by_rule") | gone)
            lf = frame.lazy()
        else:
            # Collected together below; each plan sees the rows removed by the rules before it.
            flagged.append(dossiers.with_columns(regle=pl.lit(rule.id), motif=pl.lit(rule.motif)))
    first_line = frame.group_by(DOSSIER).agg(dossier=pl.col("line").min())
    live = frame.filter(~pl.col("__removed")).select("line", DOSSIER)
    if flagged:
        quarantine = pl.concat(pl.collect_all(flagged)).join(first_line, on=DOSSIER)
        quarantine = quarantine.join(live, on=DOSSIER)
        quarantine = quarantine.select(*QUARANTINE_SCHEMA).cast(QUARANTINE_SCHEMA)
    else:
        quarantine = pl.DataFrame(schema=QUARANTINE_SCHEMA)
    quarantine = quarantine.sort("line", "regle")
    rejected_rows = (pl.concat(rule_rejected) if rule_rejected else pl.DataFrame(
        schema={"line": pl.Int64, "reason": pl.String, "regle": pl.String}))
    counts = {rule.id: {"dossiers": 0, "lignes": 0} for rule in spec.rules}
    for r in rejected_rows.group_by("regle").agg(n=pl.len()).iter_rows(named=True):
        counts[r["regle"]]["lignes"] = r["n"]
    per_rule = quarantine.group_by("regle").agg(dossiers=pl.col("dossier").n_unique(),
                                                lignes=pl.len())
    for r in per_rule.iter_rows(named=True):
        counts[r["regle"]] = {"dossiers": r["dossiers"], "lignes": r["lignes"]}
    return Outcome(rejected=rejected_rows, quarantine=quarantine, counts=counts)
