"""The `residu` command, mounted by pipeline/cli.py."""

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
    """Add `residu` to the top-level app."""

    @app.command("residu")
    def residue_cmd(
        agency: Annotated[str, typer.Option("--agency", help="caf, cpam ou msa")],
        demande: Annotated[Path, typer.Option(
            "--demande", help="demande de l'opérateur central (demande_<organisme>.csv : une "
                              "colonne handle)")],
        workdir: Annotated[Path, typer.Option(
            help="dossier de l'organisme (handles.parquet, ingested.parquet)")],
        keys: KeysOpt,
        convention: ConventionOpt = DEFAULT_CONVENTION,
        export: Annotated[Path | None, typer.Option(
            "--export", help="dossier du résidu à transmettre (défaut : <workdir>/residu)")
        ] = None,
        today: TodayOpt = None,
        as_json: JsonOpt = False,
        config: ConfigOpt = None,
        remplacer: Remplacer = False,
    ) -> None:
        """Encode les lignes que l'opérateur n'a pas pu apparier (filtres de Bloom durcis).

        Seules les lignes des handles demandés sont encodées (noms, prénom, date de naissance,
        sexe et commune, jamais en clair), dans residu.parquet avec un manifeste signé. Un handle
        inconnu refuse la demande ; une personne en opposition n'est jamais encodée (comptée).
        """
        from pipeline.agency.residue.core import encode_residue_result
        from pipeline.common.files import staged_folder
        from pipeline.common.outputs import check_agency_folder, parse_day
        from pipeline.shared.bloom import RESIDUE_DIR
        from pipeline.trust import audit

        export = export or workdir / RESIDUE_DIR
        with audit.agency_run(workdir, replace=remplacer, outputs=[export]):
            check_agency_folder(workdir, agency)
            with staged_folder(export, private=True) as staging:
                result = encode_residue_result(agency, workdir, keys, convention, demande,
                                               staging, today=parse_day(today))
            result = dataclasses.replace(
                result, residue_file=export / result.residue_file.name,
                leakage_file=export / result.leakage_file.name,
                manifest_file=export / result.manifest_file.name if result.manifest_file
                else None)
            audit.record_agency(
                workdir, "residu", agency, rows=result.counts["encodes"],
                key_fingerprint=result.key_fingerprint, counts=result.counts,
                outputs=audit.file_facts(result.residue_file, result.leakage_file,
                                         result.manifest_file))
        if as_json:
            typer.echo(json.dumps({
                "residu": str(result.residue_file),
                "manifest": str(result.manifest_file) if result.manifest_file else None,
                "leakage": str(result.leakage_file),
                "key_fingerprint": result.key_fingerprint,
                "counts": result.counts,
            }, indent=2, ensure_ascii=False, sort_keys=True))
            return
        info(f"À transmettre : {result.residue_file} ({result.counts['encodes']} lignes) et "
             f"{result.manifest_file}")
