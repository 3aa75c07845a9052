"""One run per output folder, and no output overwritten unless asked.

Every command that writes an output folder opens it through `exclusive_output`:
1. it takes an exclusive lock (`.<folder>.lock` beside the folder, owner-only, released by the
   kernel even when the process is killed), waiting at most NONRECOURS_LOCK_WAIT seconds
   (default 10) before refusing in French — two runs never interleave their writes;
2. it repairs what a killed run left (`pipeline.common.files.recover`): an interrupted folder
   swap is rolled back, temporary files and staging folders are removed;
3. it refuses an existing output unless `--remplacer` was given.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from pipeline.common.errors import PipelineError
from pipeline.common.files import PRIVATE_FILE_MODE, recover

LOCK_WAIT_ENV = "NONRECOURS_LOCK_WAIT"
DEFAULT_LOCK_WAIT = 10.0

Remplacer = Annotated[
    bool,
    typer.Option("--remplacer", help="Remplacer les sorties existantes (refusé sinon)."),
]


def lock_path(folder: Path) -> Path:
    return folder.parent / f".{folder.name}.lock"


@contextlib.contextmanager
def folder_lock(folder: str | Path, *, wait: float | None = None) -> Iterator[Path]:
    """Hold an exclusive lock on `folder` for the block; refuse after `wait` seconds."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = lock_path(folder)
    if wait is None:
        wait = float(os.environ.get(LOCK_WAIT_ENV, DEFAULT_LOCK_WAIT))
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise PipelineError(
                        f"{folder} : une autre exécution utilise déjà ce dossier (verrou {lock}, "
                        f"attente {wait:g} s) ; relancez quand elle sera terminée"
                    ) from None
                time.sleep(0.1)
        yield lock
    finally:
        os.close(fd)  # releases the lock


def refuse_existing(paths: list[Path], replace: bool) -> None:
    """An output that already exists is only overwritten with --remplacer."""
    if replace:
        return
    for path in paths:
        if path.is_file() or (path.is_dir() and any(path.iterdir())):
            raise PipelineError(
                f"{path} existe déjà ; ajoutez --remplacer pour le remplacer (ou choisissez un "
                "autre dossier de sortie)"
            )


@contextlib.contextmanager
def exclusive_output(
    folder: str | Path, *, replace: bool, outputs: list[str | Path] | None = None
) -> Iterator[Path]:
    """Lock `folder`, repair a killed run's leftovers, refuse existing `outputs` (default: the
    folder itself when not empty) unless `replace`; yield the folder."""
    folder = Path(folder)
    targets = [Path(p) for p in outputs] if outputs is not None else [folder]
    with folder_lock(folder):
        recover(folder)
        for target in targets:
            if target != folder and not target.is_file():
                recover(target)  # an output folder kept elsewhere (e.g. --export)
        refuse_existing(targets, replace)
        yield folder


def parse_day(value: str | None, option: str = "--today") -> date:
    """AAAA-MM-JJ -> date (today when absent); any other form is a one-line French refusal."""
    if not value:
        return date.today()
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise PipelineError(
            f"{option} : date invalide « {value[:40]} » (format attendu AAAA-MM-JJ, "
            "par exemple 2026-12-01)"
        ) from None


# The ingest step's statistics file: it says which agency's extract a folder holds.
STATS = "ingest_stats.json"


def check_agency_folder(workdir: str | Path, agency: str) -> None:
    """Refuse to run an agency's step on another agency's folder (e.g. `--agency cpam` on the
    CAF folder): the ingest statistics say which agency's extract the folder holds."""
    import json

    stats = Path(workdir) / STATS
    if not stats.is_file():
        return  # the step's own reader names the missing ingested table
    try:
        found = json.loads(stats.read_text("utf-8")).get("agence")
    except (OSError, ValueError, AttributeError):
        return
    if found and found != agency:
        raise PipelineError(
            f"{workdir} : ce dossier contient l'extrait ingéré de la {str(found).upper()}, pas "
            f"celui de la {agency.upper()} ; vérifiez --agency et --workdir"
        )
