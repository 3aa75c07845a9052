"""The `parts` command, mounted by pipeline/cli.py."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer

from pipeline.agency.cli_options import (
    DEFAULT_CONVENTION,
    ConventionOpt,
    JsonOpt,
    KeysOpt,
    TodayOpt,
)
from pipeline.common.outputs import Remplacer
from pipeline.common.progress import info
from pipeline.territory.config import ConfigOpt


def register(app: typer.Typer) -> None:
    """Add `parts` to the top-level app."""

    @app.command("parts")
    def shares_cmd(
        agency: Annotated[str, typer.Option("--agency", help="caf (seule la CAF a des parts)")],
        liens: Annotated[Path, typer.Option(
            "--liens", help="liens écrits par l'opérateur d'appariement (liens_caf.parquet : "
                            "colonnes caf_handle, cpam_handle)")],
        workdir: Annotated[Path, typer.Option(
            help="dossier de l'organisme (separation_locale.parquet, écrit par pseudonymise)")],
        keys: KeysOpt,
        convention: ConventionOpt = DEFAULT_CONVENTION,
        export: Annotated[Path | None, typer.Option(
            "--export", help="dossier des parts à transmettre à l'opérateur de détection "
                             "(défaut : <workdir>/parts)")] = None,
        today: TodayOpt = None,
        as_json: JsonOpt = False,
        config: ConfigOpt = None,
        remplacer: Remplacer = False,
    ) -> None:
        """Calcule les parts de la CAF pour l'opérateur de détection, après les liens.

        Pour chaque foyer dont un adulte est lié et qui n'est pas en opposition : sa part du
        démasquage des sommes de l'opérateur d'appariement (caf.parts.parquet) ; pour chaque
        personne de la couverture liée : l'indicateur RSA ou prime d'activité de son foyer CAF
        (caf.minima.parquet). Chaque fichier a son manifeste signé. Un handle CAF inconnu ou une
        liste de liens mal formée refuse tout (fichier, ligne et colonne nommés)."""
        from pipeline.agency.shares.core import write_shares
        from pipeline.common.files import staged_folder
        from pipeline.common.outputs import check_agency_folder, parse_day
        from pipeline.shared.separation import SHARES_DIR
        from pipeline.trust import audit

        export = export or workdir / SHARES_DIR
        with audit.agency_run(workdir, replace=remplacer, outputs=[export]):
            check_agency_folder(workdir, agency)
            with staged_folder(export, private=True) as staging:
                result = write_shares(agency, workdir, keys, convention, liens, staging,
                                      today=parse_day(today))

            def moved(path: Path | None) -> Path | None:
                return export / path.name if path else None

            result = dataclasses.replace(
                result, shares_file=export / result.shares_file.name,
                minima_file=export / result.minima_file.name,
                shares_manifest=moved(result.shares_manifest),
                minima_manifest=moved(result.minima_manifest))
            audit.record_agency(
                workdir, "parts", agency, rows=result.counts["foyers_parts"],
                key_fingerprint=result.key_fingerprint, counts=result.counts,
                outputs=audit.file_facts(result.shares_file, result.shares_manifest,
                                         result.minima_file, result.minima_manifest))
        if as_json:
            typer.echo(json.dumps({
                "parts": str(result.shares_file),
                "parts_manifest": str(result.shares_manifest) if result.shares_manifest
                else None,
                "minima": str(result.minima_file),
                "minima_manifest": str(result.minima_manifest) if result.minima_manifest
                else None,
                "key_fingerprint": result.key_fingerprint,
                "counts": result.counts,
            }, indent=2, ensure_ascii=False, sort_keys=True))
            return
        info(f"À transmettre à l'opérateur de détection : {result.shares_file} "
             f"({result.counts['foyers_parts']} foyers), {result.minima_file} "
             f"({result.counts['personnes_minima']} personnes liées) et leurs manifestes")
