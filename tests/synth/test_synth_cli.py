"""The `synth` command: readable refusals, non-zero exits, nothing half-written."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from pipeline.common.errors import PipelineError
from pipeline.synth import generate

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", "synth", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={"NONRECOURS_QUIET": "1", "PATH": "/usr/bin:/bin"})


def test_cli_writes_a_dataset_and_refuses_a_bad_date(tmp_path):
    ok = _run("--households", "50", "--seed", "3", "--out", str(tmp_path / "d"))
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "d" / "raw" / "caf_extract.csv").is_file()
    assert "lignes CAF" in ok.stdout
    bad = _run("--households", "50", "--reference-date", "2026-02-31", "--out",
               str(tmp_path / "e"))
    assert bad.returncode != 0
    assert "reference-date" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "e").exists()


def test_reference_date_without_confirmed_table_is_refused(tmp_path):
    with pytest.raises(PipelineError, match="barème"):
        generate(10, 1, 1.0, tmp_path / "x", reference_date=date(2026, 6, 1))
    assert not (tmp_path / "x" / "raw").exists()


@pytest.mark.parametrize("households,noise", [(0, 1.0), (10, -1.0)])
def test_bad_arguments(tmp_path, households, noise):
    with pytest.raises(PipelineError):
        generate(households, 1, noise, tmp_path)


def test_unknown_territory(tmp_path):
    with pytest.raises(PipelineError, match="Territoire inconnu"):
        generate(10, 1, 1.0, tmp_path, territory="nowhere")
