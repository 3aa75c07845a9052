"""Commands of this stage, mounted by pipeline/cli.py: `reidentify`, `feedback load`.

`reidentify` refuses to run without the signed convention (it decides which contact fields may
appear) and without the contact history unless `--sans-historique` says there is none: running
without it would silently stop holding back recently contacted households.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pipeline.common.errors import PipelineError
from pipeline.common.outputs import Remplacer
from pipeline.common.progress import info
from pipeline.territory.config import ConfigOpt

HELD_LABELS = {
    "opposition_table_handles": "opposition (table des handles)",
    "opposition_liste": "opposition (liste de l'organisme)",
    "contact_recent": "contactés récemment",
}


def register(app: typer.Typer) -> None:
    """Add `reidentify` and the `feedback` group to the top-level app."""

    @app.command("reidentify")
    def reidentify_cmd(
        agency: Annotated[str, typer.Option("--agency", help="caf ou cpam.")],
        targets: Annotated[Path, typer.Option("--targets", help="targets.parquet reçu.")] = Path(
            "out/central/targets.parquet"
        ),
        workdir: Annotated[
            Path, typer.Option("--workdir", help="Dossier de l'organisme (handles.parquet).")
        ] = Path("out/caf"),
        out: Annotated[Path, typer.Option("--out", help="Dossier des listes.")] = Path(
            "out/caf/listes"
        ),
        convention: Annotated[
            Path | None, typer.Option("--convention", help="Convention signée (YAML).")
        ] = None,
        opposition: Annotated[
            Path | None, typer.Option("--opposition", help="Liste d'opposition (CSV ;).")
        ] = None,
        contacts: Annotated[
            Path | None, typer.Option("--contacts", help="Historique de contacts (CSV ;).")
        ] = None,
        sans_historique: Annotated[
            bool,
            typer.Option(
                "--sans-historique",
                help="Aucun historique de contacts : ne retient pas les foyers déjà contactés.",
            ),
        ] = False,
        territory: Annotated[
            Path | None,
            typer.Option(
                "--territory", help="Table IRIS -> quartier (iris_quartiers.csv) : noms affichés."
            ),
        ] = None,
        hold_months: Annotated[
            int, typer.Option("--hold-months", help="Ne pas recontacter avant (mois).")
        ] = 6,
        run_date: Annotated[
            str | None,
            typer.Option("--run-date", help="Date d'édition AAAA-MM-JJ (défaut : ce jour)."),
        ] = None,
        config: ConfigOpt = None,
        remplacer: Remplacer = False,
    ) -> None:
        """Resolve this agency's handles into per-quartier lists (XLSX + CSV) for the CCAS."""
        if convention is None:
            raise PipelineError(
                "reidentify : --convention obligatoire (la convention signée fixe les champs de "
                "contact autorisés) ; rien n'a été écrit"
            )
        if contacts is None and not sans_historique:
            raise PipelineError(
                "reidentify : --contacts <historique.csv> obligatoire pour ne pas recontacter "
                "les foyers déjà contactés, ou --sans-historique s'il n'en existe pas ; "
                "rien n'a été écrit"
            )
        if contacts is not None and sans_historique:
            raise PipelineError("reidentify : --contacts et --sans-historique s'excluent")
        from pipeline.agency.reidentify.api import reidentify
        from pipeline.common.files import staged_folder
        from pipeline.common.outputs import parse_day
        from pipeline.trust import audit

        run_info = {"run_date": parse_day(run_date, "--run-date").isoformat()} if run_date \
            else None
        with audit.agency_run(workdir, replace=remplacer, outputs=[out]):
            with staged_folder(out, private=True) as staging:
                res = reidentify(
                    agency,
                    targets,
                    workdir,
                    staging,
                    convention=convention,
                    opposition=opposition,
                    contacts=contacts,
                    hold_months=hold_months,
                    territory=territory,
                    run_info=run_info,
                )
            audit.record_agency(
                workdir, "reidentification", agency, inputs=audit.file_facts(targets),
                outputs=audit.file_facts(*(out / f.name for f in res.files)),
                listees=res.stats["listees"], retenues=res.stats["retenues"])
        listed, held = res.stats["listees"], res.stats["retenues"]
        reasons = ", ".join(f"{HELD_LABELS.get(k, k)} : {v}" for k, v in held.items() if v)
        info(
            f"Listes écrites dans {out} : {listed.get('cible', 0)} foyers à contacter, "
            f"{listed.get('a_verifier', 0)} à vérifier, dans {len(res.stats['par_quartier'])} "
            f"quartiers ; retenus : {sum(held.values())}" + (f" ({reasons})" if reasons else "")
        )

    feedback = typer.Typer(
        help="Retours du CCAS : résultats saisis dans les listes, taux de succès.",
        no_args_is_help=True,
    )
    app.add_typer(feedback, name="feedback")

    @feedback.command("load")
    def load_cmd(
        feedback_files: Annotated[
            list[Path],
            typer.Option(
                "--feedback",
                help="Liste(s) remplie(s) (.xlsx ou .csv) ou dossier des listes ; répétable.",
            ),
        ],
        listes: Annotated[Path, typer.Option("--listes", help="Dossier des listes.")] = Path(
            "out/caf/listes"
        ),
        out: Annotated[Path, typer.Option("--out", help="Dossier du rapport.")] = Path(
            "out/caf/retours"
        ),
        remplacer: Remplacer = False,
    ) -> None:
        """Read the filled lists back: hit rates per rule and quartier (+ suppressed copy)."""
        from pipeline.agency.reidentify.feedback import load_feedback
        from pipeline.common.files import staged_folder
        from pipeline.trust import audit

        workdir = listes.parent  # the agency folder: its audit log records the feedback read
        with audit.agency_run(workdir, replace=remplacer, outputs=[out]):
            with staged_folder(out, private=True) as staging:
                summary = load_feedback(listes, feedback_files, staging)
            summary["fichiers"] = [str(out / Path(f).name) for f in summary.get("fichiers", [])]
            read = [f for p in feedback_files
                    for f in (sorted(Path(p).iterdir()) if Path(p).is_dir() else [Path(p)])]
            audit.record_agency(workdir, "retours", workdir.name,
                                inputs=audit.file_facts(*read),
                                outputs=audit.file_facts(*sorted(out.iterdir())))
        typer.echo(json.dumps(summary, ensure_ascii=False))
