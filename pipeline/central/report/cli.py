"""Commands of this stage, mounted by pipeline/cli.py: validate, report, validation-suites."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Annotated

import typer

from pipeline.common.errors import InputError

RAW_ENCODINGS = {"caf_raw": "utf-8", "cpam_raw": "cp1252"}


def _read_table(path: Path, stage: str):
    """Parquet as is; CSV (`;`) as text, raw extracts in their agency's encoding."""
    import polars as pl

    from pipeline.central.report.validation import canonical_stage

    if not path.is_file():
        raise InputError(path, "fichier introuvable")
    if path.suffix.lower() == ".parquet":
        from pipeline.common.tables import read_parquet

        return read_parquet(path, "fichier Parquet")
    encoding = RAW_ENCODINGS.get(canonical_stage(stage), "utf-8-sig")
    try:
        text = path.read_bytes().decode(encoding)
    except UnicodeDecodeError as exc:
        # Line of the first undecodable byte, never the byte's context.
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise InputError(path, f"encodage attendu {encoding} non respecté", line=line) from exc
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        df = pl.read_csv(io.StringIO(text), separator=";", infer_schema=False)
    except pl.exceptions.PolarsError as exc:
        raise InputError(path, f"CSV illisible ({type(exc).__name__})") from exc
    # An empty field is a missing value, not an empty string (GE then skips it, as intended).
    return df.with_columns(pl.all().replace("", None))


def _handles(path: Path | None) -> list[str] | None:
    if path is None:
        return None
    import polars as pl

    if not path.is_file():
        raise InputError(path, "fichier introuvable")
    try:
        return pl.read_parquet(path, columns=["handle"])["handle"].drop_nulls().to_list()
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(path, "colonne « handle » illisible", column="handle") from exc


def _load_json(path: Path) -> dict:
    if not path.is_file():
        raise InputError(path, "fichier introuvable")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"JSON invalide ({exc.msg})", line=exc.lineno) from exc
    if not isinstance(doc, dict):
        raise InputError(path, "un objet JSON est attendu")
    return doc


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the top-level app."""

    @app.command("validate")
    def validate_cmd(
        stage: Annotated[str, typer.Argument(help="Étape : caf_raw, cpam_raw, caf_ingested, "
                                             "cpam_ingested, caf_export, cpam_export, links, "
                                             "clerical_review, targets")],
        table: Annotated[Path, typer.Argument(help="Table à valider (.parquet, ou .csv « ; »)")],
        out: Annotated[Path, typer.Option(help="Dossier de sortie (écrit validation/<étape>.json)")]
        = Path("out/validation-run"),
        context: Annotated[Path | None, typer.Option(help="Contexte JSON (expected_rows_min, "
                                                     "allowed_columns, caf_rows...)")] = None,
        caf_export: Annotated[Path | None, typer.Option(help="Export CAF : liens vers des "
                                                        "personnes connues (étape links)")] = None,
        cpam_export: Annotated[Path | None, typer.Option(help="Export CPAM (étape links)")]
        = None,
        aggregates: Annotated[Path | None, typer.Option(help="aggregates.csv (étape targets)")]
        = None,
        fail: Annotated[bool, typer.Option(help="Code de sortie non nul si un contrôle "
                                           "critique échoue")] = True,
        engine: Annotated[str, typer.Option(help="Moteur : polars (défaut, rapide) ou "
                                            "great_expectations (référence)")] = "polars",
    ) -> None:
        """Valide une table avec la suite d'attentes de son étape (résultats sans aucune valeur
        des données)."""
        from pipeline.central.report.validation import raise_on_critical, validate

        ctx = _load_json(context) if context else {}
        if caf_export:
            ctx["caf_handles"] = _handles(caf_export)
            ctx.setdefault("caf_rows", len(ctx["caf_handles"]))
        if cpam_export:
            ctx["cpam_handles"] = _handles(cpam_export)
            ctx.setdefault("cpam_rows", len(ctx["cpam_handles"]))
        if aggregates:
            if not aggregates.is_file():
                raise InputError(aggregates, "fichier introuvable")
            ctx["aggregates"] = aggregates
        outcome = validate(stage, _read_table(table, stage), out, context=ctx, engine=engine)
        typer.echo(
            f"{outcome.stage} : {'conforme' if outcome.success else 'ÉCHEC'} — "
            f"{outcome.passed}/{outcome.evaluated} contrôles conformes, "
            f"{len(outcome.critical_failures)} critique(s), {len(outcome.warnings)} "
            f"avertissement(s), {outcome.skipped} non évalué(s) → {outcome.results_path}"
        )
        for w in outcome.warnings:
            typer.echo(f"  avertissement : {w}", err=True)
        if fail:
            raise_on_critical(outcome)

    @app.command("report")
    def report_cmd(
        run_dir: Annotated[Path, typer.Argument(help="Dossier de l'exécution (reçoit "
                                                "report.html et report.json)")],
        facts: Annotated[Path, typer.Option(
            help="Faits JSON (schéma : pipeline/central/report/facts.py)")]
        = Path("facts.json"),
    ) -> None:
        """Produit le rapport d'audit autonome en français (HTML hors ligne + JSON)."""
        from pipeline.central.report.render import render_report

        html, js = render_report(run_dir, _load_json(facts))
        typer.echo(f"{html}\n{js}")

    @app.command("validation-suites")
    def suites_cmd() -> None:
        """Liste les suites de validation versionnées et leurs contrôles."""
        from pipeline.shared.suite_spec import available_stages, load_suite

        for stage in available_stages():
            s = load_suite(stage)
            crit = sum(1 for e in s.expectations if e["severity"] == "critical")
            typer.echo(f"{stage:16} v{s.version}  {len(s.expectations):2} attentes "
                       f"({crit} critiques)  {s.description}")
            for e in s.expectations:
                typer.echo(f"    [{e['severity']:8}] {e['id']}: {e['label']}")
