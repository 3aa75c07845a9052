"""`python -m pipeline` / `nonrecours`: one sub-command per stage.

Each stage package owns its own `cli.py` with a `register(app)` function; this module only mounts
them and turns a `PipelineError` into a clear message and a non-zero exit code.
"""

from __future__ import annotations

import sys

import typer

from pipeline.common.errors import PipelineError
from pipeline.common.progress import console

app = typer.Typer(
    name="nonrecours",
    help="Croisement CAF x CPAM pseudonymisé contre le non-recours (TZNR).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _mount() -> None:
    from pipeline.central import cli as central_cli
    from pipeline.detect import cli as detect_cli
    from pipeline.ingest import cli as ingest_cli
    from pipeline.match import cli as match_cli
    from pipeline.pseudonymise import cli as pseudonymise_cli
    from pipeline.reidentify import cli as reidentify_cli
    from pipeline.report import cli as report_cli
    from pipeline.synth import cli as synth_cli
    from pipeline.trust import cli as trust_cli

    for module in (synth_cli, ingest_cli, pseudonymise_cli, trust_cli, match_cli, detect_cli,
                   reidentify_cli, report_cli, central_cli):
        module.register(app)


@app.callback()
def _root() -> None:
    """Croisement CAF x CPAM pseudonymisé contre le non-recours (TZNR)."""


@app.command()
def version() -> None:
    """Print the tool version (it goes into every manifest and audit entry)."""
    from pipeline import __version__

    typer.echo(__version__)


_mount()


def main() -> None:
    """Run the app; a PipelineError becomes a message on stderr and its exit code."""
    try:
        app()
    except PipelineError as exc:
        console.print(f"[bold red]ERREUR[/bold red] {exc}")
        sys.exit(exc.exit_code)
