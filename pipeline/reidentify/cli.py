"""Commands of this stage, mounted by pipeline/cli.py."""

import typer


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the top-level app (filled in by the stage's owner)."""
