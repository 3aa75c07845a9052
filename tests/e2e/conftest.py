"""One fresh synthetic territory, run through the whole chain once per test session.

The chain runs as `python -m pipeline run` in a subprocess, exactly like `make match`, and its
whole console output is kept so that tests can check no log line carries an identifier.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONVENTION = ROOT / "conventions" / "demo-flers.yaml"
HOUSEHOLDS = 400
SEED = 4242
TODAY = "2026-11-22"


@dataclass(frozen=True)
class ChainRun:
    dataset: Path
    out: Path
    log: str
    convention: Path = CONVENTION
    today: str = TODAY


def run_chain(dataset: Path, out: Path, seed: int = SEED) -> subprocess.CompletedProcess:
    env = {**os.environ, "NONRECOURS_QUIET": "0", "COLUMNS": "200"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "run",
            "--dataset",
            str(dataset),
            "--out",
            str(out),
            "--convention",
            str(CONVENTION),
            "--seed",
            str(seed),
            "--today",
            TODAY,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=False,
    )


@pytest.fixture(scope="session")
def chain_run(tmp_path_factory: pytest.TempPathFactory) -> ChainRun:
    from pipeline.synth import generate

    base = tmp_path_factory.mktemp("e2e")
    dataset = base / "data"
    generate(households=HOUSEHOLDS, seed=SEED, noise=1.0, out=dataset)
    out = base / "out"
    proc = run_chain(dataset, out)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"chain failed:\n{log[-4000:]}"
    return ChainRun(dataset=dataset, out=out, log=log)
