"""`nonrecours synth`: write a synthetic dataset (raw extracts + ground truth)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from pipeline.common.errors import PipelineError
from pipeline.common.outputs import Remplacer


def register(app: typer.Typer) -> None:
    """Add the `synth` command to the top-level app."""

    @app.command("synth")
    def synth(
        households: Annotated[int, typer.Option(help="Nombre de foyers CAF.")] = 2000,
        seed: Annotated[int, typer.Option(help="Graine (mêmes arguments = mêmes octets).")]
        = 20261122,
        noise: Annotated[float, typer.Option(help="Facteur de bruit (0 = données propres).")]
        = 1.0,
        out: Annotated[Path, typer.Option(help="Dossier de sortie.")] = Path("sample_data"),
        reference_date: Annotated[
            str, typer.Option(help="Date de référence des extraits (AAAA-MM-JJ).")
        ] = "2026-03-02",
        territory: Annotated[str, typer.Option(help="Territoire (YAML du paquet ou chemin).")]
        = "flers",
        noise_profile: Annotated[str, typer.Option(
            "--profil-bruit",
            help="Profil de bruit : standard, ou realiste (dates vides ou erronées, année "
                 "fausse, nom et prénom inversés, clé NIR erronée, noms d'usage).")]
        = "standard",
        msa: Annotated[bool, typer.Option(
            "--msa", help="Ajoute un extrait MSA (troisième fournisseur, côté couverture "
                          "maladie) : une part des foyers absents de la CPAM y sont assurés.")]
        = False,
        remplacer: Remplacer = False,
    ) -> None:
        """Génère des extraits CAF et CPAM (et MSA) synthétiques et leur vérité terrain."""
        from pipeline.synth.generate import generate

        try:
            ref = datetime.strptime(reference_date, "%Y-%m-%d").date()
        except ValueError:
            raise PipelineError(
                f"--reference-date : date invalide « {reference_date} » (attendu AAAA-MM-JJ)"
            ) from None
        from pipeline.common.outputs import exclusive_output

        with exclusive_output(out, replace=remplacer, outputs=[out / "raw", out / "truth"]):
            counts = generate(households, seed, noise, out, ref, territory, noise_profile,
                              msa=msa)
        typer.echo(
            f"{counts['caf_rows']} lignes CAF, {counts['cpam_rows']} lignes CPAM, "
            + (f"{counts['msa_rows']} lignes MSA, " if msa else "")
            + f"{counts['persons']} personnes -> {out}"
        )
