"""Commands of this stage, mounted by pipeline/cli.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.common.outputs import Remplacer


def register(app: typer.Typer) -> None:
    """Add `detect` to the top-level app."""

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
