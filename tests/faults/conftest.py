"""A small territory run once through the whole chain; each fault test works on a copy of it.

The faults are real: the commands run as separate processes (`python -m pipeline ...`) and are
killed with SIGKILL, or made to fail with a system error, at a named point through the
NONRECOURS_FAULT hook of pipeline/common/files.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from faults_world import CONVENTION, TODAY, World, cli


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
