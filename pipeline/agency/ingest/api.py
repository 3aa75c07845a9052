"""`ingest()`: raw extract -> ingested.parquet + rejections.csv + avertissements.csv +
quarantaine.csv + stats.

Every data record ends up in exactly one of ingested.parquet, rejections.csv ("ligne rejetée")
or quarantaine.csv (its dossier is held back whole); ingest_stats.json says how many of each, so
the books always balance.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.agency.ingest import convert, derive, file_checks, household
from pipeline.agency.ingest.layout import Layout, load_layout
from pipeline.agency.ingest.reader import RawTable, read_raw
from pipeline.agency.ingest.schema import output_schema
from pipeline.common.errors import InputError
from pipeline.common.files import private_dir, sha256_file, write_text
from pipeline.common.outputs import STATS
from pipeline.common.progress import info, step
from pipeline.common.tables import write_csv, write_parquet

INGESTED = "ingested.parquet"
REJECTIONS = "rejections.csv"
WARNINGS = "avertissements.csv"
QUARANTINE = "quarantaine.csv"

_ISSUE_SCHEMA = {"line": pl.Int64, "column": pl.String, "reason": pl.String, "action": pl.String}


@dataclass(frozen=True)
class IngestResult:
    """Where the outputs are and how the rows were accounted for."""

    agency: str
    ingested: Path
    rejections: Path
    warnings: Path
    stats: Path
    rows_read: int
    rows_accepted: int
    rows_rejected: int
    values_ignored: int
    warnings_count: int
    quarantine: Path | None = None
    rows_quarantined: int = 0


def _apply(df: pl.DataFrame, conv: convert.Conversion) -> pl.DataFrame:
    exprs = [e.alias(k) for k, e in conv.outputs.items()]
    exprs += [e.alias(issue.key) for issue, e in conv.issues]
    return df.lazy().with_columns(exprs).collect()


def _issues_long(df: pl.DataFrame, issues: list[convert.Issue]) -> pl.DataFrame:
    """One row per (line, issue) that fired: line, column, reason, action."""
    lf = df.lazy()
    parts = [
        lf.filter(pl.col(i.key).is_not_null()).select(
            "line", column=pl.lit(i.column), reason=pl.col(i.key), action=pl.lit(i.action))
        for i in issues
        if i.key in df.columns  # convert.apply leaves out issue columns that never fire
    ]
    if not parts:
        return pl.DataFrame(schema=_ISSUE_SCHEMA)
    return pl.concat(parts).collect()


def run_conversion(raw: pl.DataFrame, layout: Layout) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Typed frame (all rows, with a `__rejected` flag) and the long issue table.

    Ragged rows (`__ragged`) are converted too, so that their dossier key is known, but they are
    rejected as a whole and their value issues are not reported.
    """
    groups = convert.build(layout)
    df = convert.apply(raw, groups)
    second = derive.build(layout)
    df = _apply(df, second)
    first_issues = [i for g in groups for i, _ in g.conv.issues]
    issues = _issues_long(df, first_issues + [i for i, _ in second.issues])
    ragged = df.filter(pl.col("__ragged")).select("line")
    issues = issues.join(ragged, on="line", how="anti")
    rejected_lines = issues.filter(pl.col("action") == convert.REJECT).select("line").unique()
    df = df.with_columns(
        __rejected=pl.col("line").is_in(rejected_lines["line"].implode()) | pl.col("__ragged"))
    return df, issues


def ingest(agency: str, input: Path, out_dir: Path, layout: Path | None = None) -> IngestResult:
    """Read, validate and normalise one raw extract into `out_dir` (agency side, owner-only).

    Every file-level refusal happens before anything is written."""
    lay = load_layout(agency, layout)
    input = Path(input)
    with step(f"Lecture de {input.name} ({lay.agency.upper()})"):
        raw = read_raw(input, lay)
    with step(f"Validation et normalisation de {raw.frame.height} lignes"):
        df, issues = run_conversion(raw.frame, lay)
        file_checks.check(input, lay, raw.frame, df)
        outcome = household.apply(df, lay.household, pl.col("__rejected")) if lay.household \
            else None
    structural = raw.structural.with_columns(action=pl.lit(convert.REJECT))
    row_issues = issues.filter(pl.col("action") == convert.REJECT)
    rule_rejections = pl.DataFrame(schema=_ISSUE_SCHEMA)
    held = pl.DataFrame(schema=household.QUARANTINE_SCHEMA)
    if outcome is not None:
        rule_rejections = outcome.rejected.select(
            "line", column=pl.lit(None, dtype=pl.String), reason="reason",
            action=pl.lit(convert.REJECT))
        held = outcome.quarantine
        df = df.with_columns(
            __rejected=pl.col("__rejected")
            | pl.col("line").is_in(outcome.rejected["line"].implode()),
            __held=pl.col("line").is_in(held["line"].implode()),
        )
    else:
        df = df.with_columns(__held=pl.lit(False))
    keep = ~pl.col("__rejected") & ~pl.col("__held")
    accepted_lines = df.filter(keep).select("line")
    value_issues = issues.join(accepted_lines, on="line", how="semi")
    rejections = pl.concat(
        [structural.select(*_ISSUE_SCHEMA), row_issues, rule_rejections,
         value_issues.filter(pl.col("action") == convert.IGNORE)]
    ).sort("line", "column", "reason")
    warnings = value_issues.filter(pl.col("action") == convert.WARN)
    warnings = warnings.sort("line", "column", "reason")

    schema = output_schema(agency)
    accepted = df.filter(keep).select(
        [pl.col(name).cast(dtype) for name, dtype in schema.items()]
    )
    rows_rejected = int(df["__rejected"].sum()) + int(
        structural.join(df.select("line"), on="line", how="anti").height)
    rows_held = int(held["line"].n_unique())
    if accepted.height + rows_rejected + rows_held != raw.rows_read:  # pragma: no cover
        raise InputError(input, "incohérence interne du décompte des lignes")

    out_dir = private_dir(out_dir)
    with step(f"Écriture de {accepted.height} lignes acceptées"):
        ingested_path = write_parquet(accepted, out_dir / INGESTED, sort_by=["line"], private=True)
        rej_path = write_csv(rejections.select("line", "column", "reason", "action"),
                             out_dir / REJECTIONS, private=True)
        warn_path = write_csv(warnings.select("line", "column", "reason", "action"),
                              out_dir / WARNINGS, private=True)
        held_path = write_csv(held, out_dir / QUARANTINE, private=True)
        stats = _stats(lay, input, raw, accepted, rejections, warnings, rows_rejected)
        stats["lignes_en_quarantaine"] = rows_held
        stats["quarantaine"] = _quarantine_stats(held, outcome)
        stats_path = write_text(
            out_dir / STATS, json.dumps(stats, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
            private=True,
        )
    info(
        f"{raw.rows_read} lignes lues : {accepted.height} acceptées, {rows_rejected} rejetées, "
        f"{rows_held} en quarantaine ({stats['quarantaine']['dossiers']} dossiers), "
        f"{stats['valeurs_ignorees']} valeurs ignorées, {warnings.height} avertissements"
    )
    return IngestResult(
        agency=agency, ingested=ingested_path, rejections=rej_path, warnings=warn_path,
        stats=stats_path, rows_read=raw.rows_read, rows_accepted=accepted.height,
        rows_rejected=rows_rejected, values_ignored=stats["valeurs_ignorees"],
        warnings_count=warnings.height, quarantine=held_path, rows_quarantined=rows_held,
    )


def _quarantine_stats(held: pl.DataFrame, outcome: household.Outcome | None) -> dict[str, object]:
    return {
        "dossiers": int(held["dossier"].n_unique()),
        "lignes": int(held["line"].n_unique()),
        "par_regle": outcome.counts if outcome is not None else {},
    }


def _counts(frame: pl.DataFrame) -> list[dict[str, object]]:
    grouped = frame.group_by("action", "column", "reason").agg(nombre=pl.len())
    grouped = grouped.sort("action", "column", "reason")
    return [
        {"action": r["action"], "colonne": r["column"], "motif": r["reason"], "nombre": r["nombre"]}
        for r in grouped.iter_rows(named=True)
    ]


def _stats(lay: Layout, input: Path, raw: RawTable, accepted: pl.DataFrame,
           rejections: pl.DataFrame, warnings: pl.DataFrame,
           rows_rejected: int) -> dict[str, object]:
    statuts = accepted.group_by("nir_statut").agg(pl.len()).sort("nir_statut")
    extraction = accepted["date_extraction"].drop_nulls().unique().sort()
    return {
        "agence": lay.agency,
        "fichier": input.name,
        "sha256": sha256_file(input),
        "disposition": lay.path.name,
        "encodage": lay.encoding,
        "lignes_lues": raw.rows_read,  # records (a quoted line break joins physical lines)
        "lignes_physiques": raw.physical_lines,
        "lignes_acceptees": accepted.height,
        "lignes_rejetees": rows_rejected,
        "valeurs_ignorees": int((rejections["action"] == convert.IGNORE).sum()),
        "avertissements": warnings.height,
        "motifs": _counts(rejections) + _counts(warnings),
        "nir_statut": {r[0]: r[1] for r in statuts.iter_rows()},
        "dates_extraction": [d.isoformat() for d in extraction.to_list()],
        "colonnes_optionnelles_absentes": list(raw.missing_optional),
        "colonnes_ignorees": list(raw.ignored_columns),
        "lignes_vides_finales": raw.trailing_blank_lines,
    }
