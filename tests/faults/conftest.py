"""A small territory run once through the whole chain; each fault test works on a copy of it.

The faults are real: the commands run as separate processes (`python -m pipeline ...`) and are
killed with SIGKILL, or made to fail with a system error, at a named point through the
NONRECOURS_FAULT hook of pipeline/common/files.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONVENTION = ROOT / "conventions" / "demo-flers.yaml"
TODAY = "2026-11-22"


@dataclass(frozen=True)
class World:
    dataset: Path
    out: Path

    def caf_ingest(self, work: Path, *extra: str) -> list[str]:
        return ["ingest", "--agency", "caf", "--input",
                str(self.dataset / "raw" / "caf_extract.csv"), "--out", str(work), *extra]

    def caf_pseudonymise(self, work: Path, *extra: str) -> list[str]:
        return ["pseudonymise", "--agency", "caf", "--workdir", str(work), "--keys",
                str(work / "keys"), "--convention", str(CONVENTION), "--territory",
                str(self.dataset / "territory" / "iris_quartiers.csv"), "--seed", "1", *extra]

    def match(self, out: Path, *extra: str) -> list[str]:
        return ["match", "--convention", str(CONVENTION), "--caf", str(out / "transfer" / "caf"),
                "--cpam", str(out / "transfer" / "cpam"), "--out", str(out / "central"),
                "--audit-log", str(out / "audit.jsonl"), "--today", TODAY, *extra]


def cli(*args: str, fault: str | None = None, **env: str) -> subprocess.CompletedProcess:
    """Run one command in its own process (a fault, if any, through NONRECOURS_FAULT)."""
    full = {**os.environ, "NONRECOURS_QUIET": "1", **env}
    full.pop("NONRECOURS_FAULT", None)
    full.pop("NONRECOURS_DEBUG", None)
    if fault:
        full["NONRECOURS_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, env=full,
                          capture_output=True, text=True, check=False)


@pytest.fixture(scope="session")
def world_template(tmp_path_factory: pytest.TempPathFactory) -> World:
    from pipeline.synth import generate

    base = tmp_path_factory.mktemp("faults")
    dataset = base / "data"
    generate(households=60, seed=77, noise=1.0, out=dataset)
    out = base / "out"
    proc = cli("run", "--dataset", str(dataset), "--out", str(out), "--convention",
               str(CONVENTION), "--today", TODAY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return World(dataset=dataset, out=out)


@pytest.fixture()
def world(world_template: World, tmp_path: Path) -> World:
    """A private copy of the chain's outputs (the tests break things)."""
    out = tmp_path / "out"
    shutil.copytree(world_template.out, out, symlinks=True)
    return World(dataset=world_template.dataset, out=out)


def tree_digest(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative path -> bytes), hidden files included."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(folder: Path) -> list[Path]:
    """Temporary files and staging folders a killed run could leave behind."""
    return sorted(p for p in folder.rglob("*")
                  if p.name.endswith((".tmp", ".partial", ".old")))
