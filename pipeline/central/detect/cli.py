"""Commands of this stage, mounted by pipeline/cli.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.common.outputs import Remplacer


def register(app: typer.Typer) -> None:
    """Add `detect` and `detecter` to the top-level app."""

    @app.command("detect")
    def detect_cmd(
        caf: Annotated[Path, typer.Option("--caf", help="Export CAF pseudonymisé.")],
        cpam: Annotated[Path, typer.Option("--cpam", help="Export CPAM pseudonymisé.")],
        links: Annotated[Path, typer.Option("--links", help="Liens (links.parquet).")] = Path(
            "out/central/links.parquet"
        ),
        out: Annotated[Path, typer.Option("--out", help="Dossier de sortie.")] = Path(
            "out/central"
        ),
        rules: Annotated[
            str | None,
            typer.Option("--rules", help="Identifiants de règles, séparés par des virgules."),
        ] = None,
        strict: Annotated[
            bool, typer.Option("--strict", help="Refuser une date sans barème CSS confirmé.")
        ] = False,
        renewal_window_days: Annotated[
            int | None,
            typer.Option("--renewal-window-days", help="Fenêtre (jours) d'échéance de CSS : "
                         "calculée par la CPAM, refusée si elle diffère de features.yaml."),
        ] = None,
        remplacer: Remplacer = False,
    ) -> None:
        """Apply the rule catalogue: targets.parquet, aggregates.csv, detect_stats.json."""
        from pipeline.central.detect.engine import detect

        wanted = [r.strip() for r in rules.split(",") if r.strip()] if rules else None
        from pipeline.common.outputs import exclusive_output

        with exclusive_output(out, replace=remplacer, outputs=[out / "targets.parquet"]):
            res = detect(
                caf,
                cpam,
                links,
                out,
                rules=wanted,
                strict=strict,
                renewal_window_days=renewal_window_days,
            )
        for rid, n in res.counts.items():
            typer.echo(f"{rid}\t{n}")
        for w in res.warnings:
            typer.echo(f"ATTENTION\t{w}", err=True)

    @app.command("detecter")
    def detecter_cmd(
        convention: Annotated[Path, typer.Option(help="Convention signée (YAML).")],
        detection: Annotated[list[str], typer.Option(
            "--detection", help="Dossier de détection reçu d'un organisme (fichier "
                                "<organisme>.detection.parquet + manifeste signé) : "
                                "ORGANISME=DOSSIER, ex. caf=out/transfer/caf/detection "
                                "(une fois par fournisseur de la convention).")],
        separation: Annotated[Path, typer.Option(
            "--separation", help="Dossier remis par l'opérateur d'appariement (sommes "
                                 "masquées, oppositions).")],
        parts: Annotated[Path, typer.Option(
            "--parts", help="Dossier des parts de la CAF (parts et minima, chacun avec son "
                            "manifeste signé).")],
        out: Annotated[Path, typer.Option(help="Dossier des résultats de la détection.")] = Path(
            "out/detection"),
        audit_log: Annotated[Path, typer.Option(
            help="Journal d'audit chaîné de l'opérateur de détection (JSON lines), hors du "
                 "dossier des résultats.")] = Path("out/audit_detection.jsonl"),
        today: Annotated[str | None, typer.Option(
            help="Date du jour AAAA-MM-JJ (contrôle de validité de la convention).")] = None,
        rules: Annotated[str | None, typer.Option(
            help="Règles à appliquer, séparées par des virgules (défaut : toutes celles que la "
                 "convention autorise).")] = None,
        strict: Annotated[bool, typer.Option(
            help="Refuser si aucun barème CSS confirmé ne couvre la date de référence.")] = False,
        remplacer: Remplacer = False,
    ) -> None:
        """Detecting operator: refuse unless the convention, manifests and files verify, then
        unmask the household bits and write targets, aggregates and stats (with its k)."""
        from pipeline.central.detect.separated import run_detection
        from pipeline.common.outputs import parse_day
        from pipeline.trust.cli import _pairs

        res = run_detection(
            convention,
            _pairs(detection, "--detection"),
            separation,
            parts,
            out,
            audit_log,
            today=parse_day(today),
            rules=[r.strip() for r in rules.split(",") if r.strip()] if rules else None,
            strict=strict,
            replace=remplacer,
        )
        for rid, n in res.counts.items():
            typer.echo(f"{rid}\t{n}")
