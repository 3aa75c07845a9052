"""`match`: the linking operator's run under a convention (gate, link, hand-off, report, audit)."""

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
    @app.command("match")
    def match(
        convention: Annotated[Path, typer.Option(help="Convention signée (YAML).")],
        caf: Annotated[Path, typer.Option(help="Dossier reçu de la CAF (fichier + manifeste).")],
        cpam: Annotated[Path | None, typer.Option(
            help="Dossier reçu de la CPAM (fichier + manifeste), si elle est partie à la "
                 "convention.")] = None,
        out: Annotated[Path, typer.Option(help="Dossier des résultats centraux.")] = Path(
            "out/central"
        ),
        audit_log: Annotated[
            Path, typer.Option(help="Journal d'audit chaîné (JSON lines).")
        ] = Path("out/audit.jsonl"),
        today: Annotated[
            str | None,
            typer.Option(help="Date du jour AAAA-MM-JJ (contrôle de validité de la convention)."),
        ] = None,
        rules: Annotated[
            str | None,
            typer.Option(
                help="Règles à appliquer, séparées par des virgules (défaut : toutes celles que la "
                "convention autorise)."
            ),
        ] = None,
        strict: Annotated[
            bool,
            typer.Option(
                help="Refuser le run si aucun barème CSS confirmé ne couvre la date de référence."
            ),
        ] = False,
        fournisseur: Annotated[list[str] | None, typer.Option(
            help="Autre fournisseur de la convention : ORGANISME=DOSSIER reçu, ex. "
                 "msa=out/transfer/msa (répétable).")] = None,
        keys: Annotated[Path | None, typer.Option(
            "--keys", help="Clés de l'opérateur d'appariement : sa clé de signature signe les "
                           "sommes masquées remises à l'opérateur de détection.")] = None,
        residu: Annotated[list[str] | None, typer.Option(
            "--residu", help="Résidu reçu d'un organisme (réponse à demande_<organisme>.csv) : "
                             "ORGANISME=DOSSIER (residu.parquet + manifeste), répétable.")]
        = None,
        config: ConfigOpt = None,
        remplacer: Remplacer = False,
        engine: EngineOpt = "duckdb",
        memory_limit: MemoryLimitOpt = "4GB",
        temp_dir: TempDirOpt = None,
        threads: ThreadsOpt = None,
        spark_master: SparkMasterOpt = None,
        spark_conf: SparkConfOpt = None,
    ) -> None:
        """Run the linking operator's step: refuse unless the convention and manifests verify,
        then link, write the masked sums for the detecting operator, the CAF's link list and the
        validation report (the rules run at the detecting operator: `detecter`)."""
        from pipeline.central.engines import use_settings
        from pipeline.central.engines.options import settings_from
        from pipeline.central.run import run_central
        from pipeline.common.outputs import parse_day
        from pipeline.trust.cli import _pairs

        settings = settings_from(engine, memory_limit, temp_dir, threads, spark_master,
                                 spark_conf)
        with use_settings(settings):
            run_central(
                convention,
                {"caf": caf, **({"cpam": cpam} if cpam else {}), **_pairs(fournisseur,
                                                                          "--fournisseur")},
                out,
                audit_log,
                today=parse_day(today),
                rules=[r.strip() for r in rules.split(",")] if rules else None,
                strict=strict,
                replace=remplacer,
                residue={k: Path(v) for k, v in _pairs(residu, "--residu").items()} or None,
                keys=keys,
            )
