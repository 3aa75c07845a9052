"""Progress and status lines for long steps (rich), on stderr so stdout stays machine-readable."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator

from rich.console import Console

console = Console(
    stderr=True, highlight=False, force_terminal=None if sys.stderr.isatty() else False
)
QUIET = os.environ.get("NONRECOURS_QUIET") == "1"


@contextlib.contextmanager
def step(label: str) -> Iterator[None]:
    """Show a spinner while a step runs, then one line with its wall time."""
    t0 = time.perf_counter()
    if QUIET:
        yield
        return
    with console.status(f"[bold]{label}…"):
        yield
    console.print(f"[green]✓[/green] {label} ({time.perf_counter() - t0:.2f} s)")


def info(message: str) -> None:
    if not QUIET:
        console.print(message)


def warn(message: str) -> None:
    console.print(f"[bold yellow]ATTENTION[/bold yellow] {message}")
