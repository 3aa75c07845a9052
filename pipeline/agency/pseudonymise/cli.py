"""Commands of this stage, mounted by pipeline/cli.py."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer

from pipeline.common.outputs import Remplacer
from pipeline.common.progress import info
from pipeline.shared.providers import PROVIDERS
from pipeline.territory.config import ConfigOpt


def register(app: typer.Typer) -> None:
    """Add `pseudonymise` and `leakage-scan` to the top-level app."""

    @app.command("pseudonymise")
    def pseudonymise_cmd(
        agency: Annotated[str, typer.Option("--agency", help="caf, cpam ou msa")],
        workdir: Annotated[Path, typer.Option(help="dossier de l'organisme (ingested.parquet)")],
        keys: Annotated[Path, typer.Option("--keys", help="dossier des clés de l'organisme")],
        convention: Annotated[Path, typer.Option(help="convention signée (YAML)")] = Path(
            "conventions/demo-flers.yaml"),
        export: Annotated[Path | None, typer.Option(
            "--export", help="dossier d'export (défaut : <workdir>/export)")] = None,
        detection: Annotated[Path | None, typer.Option(
            "--detection", help="dossier du fichier de détection pour l'opérateur de détection "
                                "(défaut : <workdir>/detection)")] = None,
        territory: Annotated[Path | None, typer.Option(
            help="table IRIS -> quartier (iris_quartiers.csv)")] = None,
        opposition: Annotated[Path | None, typer.Option(
            help="liste d'opposition de l'organisme (CSV ;)")] = None,
        seed: Annotated[int | None, typer.Option(
            help="graine : handles reproductibles (tests, démonstration) ; défaut : aléatoire")
        ] = None,
        engine: Annotated[str | None, typer.Option(
            help="moteur HMAC (polars_hash, duckdb, cryptography) ; défaut : le plus rapide")
        ] = None,
        as_json: Annotated[bool, typer.Option(
            "--json", help="résumé complet en JSON sur la sortie standard")] = False,
        today: Annotated[str | None, typer.Option(
            help="date du jour AAAA-MM-JJ pour la validité de la convention (défaut : "
                 "aujourd'hui)")] = None,
        config: ConfigOpt = None,
        remplacer: Remplacer = False,
    ) -> None:
        """Pseudonymise the ingested extract: tokens, random handles, export, signed manifest.

        The convention is verified first (signatures, dates, demo material, pinned files): a
        convention the central gate would refuse writes nothing here. `--seed` only under a
        demo convention. Beside the export for the linking operator, the detection file for the
        detecting operator (`--detection`), signed too, when the convention provides for it."""
        from pipeline.agency.pseudonymise.core import pseudonymise
        from pipeline.common.files import staged_folder
        from pipeline.common.outputs import check_agency_folder, parse_day
        from pipeline.shared.separation import DETECTION_DIR
        from pipeline.trust import audit

        export = export or workdir / "export"
        detection = detection or workdir / DETECTION_DIR

        def moved(path: Path | None, folder: Path) -> Path | None:
            return folder / path.name if path else None

        with audit.agency_run(workdir, replace=remplacer, outputs=[export, detection]):
            check_agency_folder(workdir, agency)
            with staged_folder(export) as staging, \
                    staged_folder(detection, private=True) as detection_staging:
                result = pseudonymise(agency, workdir, keys, convention, staging,
                                      territory=territory, opposition=opposition, seed=seed,
                                      engine=engine, today=parse_day(today),
                                      detection_dir=detection_staging)
            result = dataclasses.replace(
                result, export_file=export / result.export_file.name,
                leakage_file=export / result.leakage_file.name,
                manifest_file=moved(result.manifest_file, export),
                detection_file=moved(result.detection_file, detection),
                detection_manifest=moved(result.detection_manifest, detection))
            audit.record_agency(
                workdir, "export", agency, rows=result.rows,
                key_fingerprint=result.key_fingerprint,
                outputs=audit.file_facts(result.export_file, result.leakage_file,
                                         result.manifest_file, result.handles_file,
                                         result.local_file),
                # apart: both folders hold an <agency>.manifest.json
                detection=audit.file_facts(result.detection_file, result.detection_manifest))
        if as_json:
            typer.echo(json.dumps({
                "export": str(result.export_file),
                "manifest": str(result.manifest_file) if result.manifest_file else None,
                "handles": str(result.handles_file),
                "leakage": str(result.leakage_file),
                "detection": str(result.detection_file) if result.detection_file else None,
                "detection_manifest": str(result.detection_manifest)
                if result.detection_manifest else None,
                "rows": result.rows,
                "key_fingerprint": result.key_fingerprint,
                "counts": result.counts,
            }, indent=2, ensure_ascii=False, sort_keys=True))
            return
        info(f"À transmettre : {result.export_file} ({result.rows} lignes, empreinte de clé "
             f"{result.key_fingerprint}) et {result.manifest_file}")
        if result.detection_file:
            info(f"À transmettre à l'opérateur de détection : {result.detection_file} et "
                 f"{result.detection_manifest}")
        info(f"Reste ici : {result.handles_file} (table de ré-identification, 0600)")
        if result.local_file:
            info(f"Reste ici : {result.local_file} (pour l'étape « parts », 0600)")

    @app.command("leakage-scan")
    def leakage_scan_cmd(
        export_file: Annotated[Path, typer.Argument(help="<agency>.pseudo.parquet")],
        ingested: Annotated[Path | None, typer.Option(
            help="extrait normalisé (côté organisme : recherche des noms et adresses)")] = None,
        handles: Annotated[Path | None, typer.Option(
            help="table des handles (côté organisme : attaque par rangs)")] = None,
    ) -> None:
        """Scan an export for identifiers and measure token frequency leakage (JSON on stdout)."""
        from pipeline.agency.pseudonymise.leakage import frequency_leakage
        from pipeline.common.errors import PipelineError
        from pipeline.shared.leak_scan import scan_export

        agency = export_file.name.split(".")[0]  # <agency>.pseudo.parquet: its coded domains
        scan = scan_export(export_file, ingested, agency if agency in PROVIDERS else None)
        freq = frequency_leakage(export_file, handles_file=handles, ingested_file=ingested)
        typer.echo(json.dumps({"scan": scan, "frequence": freq}, indent=2, ensure_ascii=False,
                              sort_keys=True))
        if not scan["ok"]:
            raise PipelineError("des données identifiantes ont été détectées dans l'export")
