"""Options every agency step after `pseudonymise` shares (`residu`, `parts`), declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

KeysOpt = Annotated[Path, typer.Option("--keys", help="dossier des clés de l'organisme")]
ConventionOpt = Annotated[Path, typer.Option(help="convention signée (YAML)")]
DEFAULT_CONVENTION = Path("conventions/demo-flers.yaml")
TodayOpt = Annotated[str | None, typer.Option(
    help="date du jour AAAA-MM-JJ pour la validité de la convention (défaut : aujourd'hui)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="résumé en JSON sur la sortie standard")]
