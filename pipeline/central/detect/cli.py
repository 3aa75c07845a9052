"""Commands of this stage, mounted by pipeline/cli.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.central.engines.options import (
    EngineOpt,
    MemoryLimitOpt,
    SparkConfOpt,
    SparkMasterOpt,
    TempDirOpt,
    ThreadsOpt,
)
from pipeline.common.outputs import Remplacer
from pipeline.territory.config import ConfigOpt


def register(app: typer.Typer) -> None:
    """Add `detect` and `detecter` to the top-level app."""

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
        config: ConfigOpt = None,
        remplacer: Remplacer = False,
        engine: EngineOpt = "duckdb",
        memory_limit: MemoryLimitOpt = "4GB",
        temp_dir: TempDirOpt = None,
        threads: ThreadsOpt = None,
        spark_master: SparkMasterOpt = None,
        spark_conf: SparkConfOpt = None,
    ) -> None:
        """Detecting operator: refuse unless the convention, manifests and files verify, then
        unmask the household bits and write targets, aggregates and stats (with its k)."""
        from pipeline.central.detect.separated import run_detection
        from pipeline.central.engines import use_settings
        from pipeline.central.engines.options import settings_from
        from pipeline.common.outputs import parse_day
        from pipeline.trust.cli import _pairs

        settings = settings_from(engine, memory_limit, temp_dir, threads, spark_master,
                                 spark_conf)
        with use_settings(settings):
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
