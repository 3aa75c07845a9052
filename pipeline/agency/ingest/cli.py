"""Commands of this stage, mounted by pipeline/cli.py."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from pipeline.common.outputs import Remplacer
from pipeline.shared.providers import PROVIDERS
from pipeline.territory.config import ConfigOpt

# every provider of pipeline/shared/providers.yaml
Agency = StrEnum("Agency", {a: a for a in PROVIDERS})


def register(app: typer.Typer) -> None:
    """Add `ingest` to the top-level app."""

    @app.command("ingest")
    def ingest_command(
        agency: Annotated[Agency, typer.Option("--agency",
            help="Agence émettrice : caf, cpam ou msa.")],
        input: Annotated[Path, typer.Option("--input", help="Extrait brut (CSV) de l'agence.")],
        out: Annotated[Path | None, typer.Option(
            "--out", help="Dossier de sortie, côté agence (défaut : out/<agence>).")] = None,
        layout: Annotated[Path | None, typer.Option(
            "--layout",
            help="Disposition YAML propre au territoire (défaut : disposition livrée).")] = None,
        config: ConfigOpt = None,
        remplacer: Remplacer = False,
    ) -> None:
        """Lire, valider et normaliser un extrait brut : ingested.parquet + rejections.csv."""
        from pipeline.agency.ingest.api import ingest
        from pipeline.trust import audit

        work = out or Path("out") / agency.value
        with audit.agency_run(work, replace=remplacer, outputs=[work / "ingested.parquet"]):
            result = ingest(agency.value, input, work, layout)
            audit.record_agency(
                work, "ingestion", agency.value, inputs=audit.file_facts(input),
                outputs=audit.file_facts(result.ingested, result.rejections, result.stats),
                rows={"lues": result.rows_read, "acceptees": result.rows_accepted,
                      "rejetees": result.rows_rejected})
        typer.echo(
            f"{result.ingested} : {result.rows_accepted} lignes acceptées, "
            f"{result.rows_rejected} rejetées, {result.rows_quarantined} en quarantaine sur "
            f"{result.rows_read} (détail : {result.rejections}, {result.quarantine})"
        )
