"""`python -m pipeline` / `nonrecours`: one sub-command per stage.

Each stage package owns its own `cli.py` with a `register(app)` function; this module only mounts
them and turns a `PipelineError` into a clear message and a non-zero exit code.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from pipeline.common.outputs import Remplacer

app = typer.Typer(
    name="nonrecours",
    help="Croisement CAF x CPAM pseudonymisé contre le non-recours (TZNR).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _mount() -> None:
    from pipeline.agency.ingest import cli as ingest_cli
    from pipeline.agency.pseudonymise import cli as pseudonymise_cli
    from pipeline.agency.reidentify import cli as reidentify_cli
    from pipeline.agency.residue import cli as residue_cli
    from pipeline.agency.shares import cli as shares_cli
    from pipeline.central import cli as central_cli
    from pipeline.central.detect import cli as detect_cli
    from pipeline.central.match import cli as match_cli
    from pipeline.central.report import cli as report_cli
    from pipeline.synth import cli as synth_cli
    from pipeline.territory import cli as territory_cli
    from pipeline.trust import cli as trust_cli

    for module in (
        synth_cli,
        ingest_cli,
        pseudonymise_cli,
        residue_cli,
        shares_cli,
        trust_cli,
        match_cli,
        detect_cli,
        reidentify_cli,
        report_cli,
        central_cli,
        territory_cli,
    ):
        module.register(app)


@app.callback()
def _root() -> None:
    """Croisement CAF x CPAM pseudonymisé contre le non-recours (TZNR)."""


@app.command()
def version() -> None:
    """Print the tool version (it goes into every manifest and audit entry)."""
    from pipeline import __version__

    typer.echo(__version__)


@app.command("run")
def run_chain(
    dataset: Annotated[
        Path, typer.Option(help="Dataset folder (raw/, territory/, agencies/).")
    ] = Path("sample_data"),
    out: Annotated[Path, typer.Option(help="Output folder (one sub-folder per side).")] = Path(
        "out"
    ),
    convention: Annotated[Path, typer.Option(help="Signed convention.")] = Path(
        "conventions/demo-flers.yaml"
    ),
    seed: Annotated[int, typer.Option(help="Handle seed (demo reproducibility).")] = 20261122,
    today: Annotated[str | None, typer.Option(help="Run date AAAA-MM-JJ.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Only print the commands, one per stage.")] = False,
    remplacer: Remplacer = False,
) -> None:
    """Run every stage of the chain, each in its own process, and say where the outputs are.

    An existing output folder is refused unless --remplacer (`make match` passes it); each stage
    then replaces its own outputs atomically, and the audit logs are only ever appended to."""
    from pipeline.chain import pinned_clock, run, show_outputs, stages
    from pipeline.common.outputs import parse_day, refuse_existing

    if today:
        parse_day(today)
    chain = stages(dataset, out, convention, seed=seed, today=today)
    if dry_run:
        for stage in chain:
            typer.echo(f"# [{stage.side}] {stage.name}\n{stage.shell()}")
        return
    refuse_existing([out], remplacer)
    timings = run(chain, out, env=pinned_clock(today))
    show_outputs(out, timings)


@app.command("evaluate")
def evaluate_cmd(
    households: Annotated[int, typer.Option(help="Households to generate.")] = 2000,
    seed: Annotated[int, typer.Option(help="Generator and handle seed.")] = 20261122,
    noise: Annotated[float, typer.Option(help="Noise level (1.0 = realistic).")] = 1.0,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("out/evaluate"),
    convention: Annotated[Path, typer.Option(help="Signed convention.")] = Path(
        "conventions/demo-flers.yaml"
    ),
    remplacer: Remplacer = False,
) -> None:
    """Generate a fresh dataset, run the chain, score it against the ground truth."""
    from pipeline.common.outputs import refuse_existing
    from pipeline.evaluate import evaluate

    refuse_existing([out], remplacer)
    evaluate(households, seed, noise, out, convention)


_mount()


def main(argv: list[str] | None = None) -> None:
    """Run the app; every failure (usage, refusal, system, unexpected) becomes one French line
    on stderr and a non-zero exit code (pipeline/common/cli_errors.py)."""
    from pipeline.common.cli_errors import exit_code_for

    command = typer.main.get_command(app)
    try:
        rv = command.main(args=sys.argv[1:] if argv is None else argv, prog_name="nonrecours",
                          standalone_mode=False)
    except BaseException as exc:
        if isinstance(exc, SystemExit):
            raise
        sys.exit(exit_code_for(exc))
    sys.exit(rv if isinstance(rv, int) else 0)
