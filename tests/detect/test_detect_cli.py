"""The `detect` command: outputs on success, a readable error and exit code on bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
from detect_builders import Builder

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NONRECOURS_QUIET": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_detect_cli_writes_outputs_then_refuses_bad_links(tmp_path: Path) -> None:
    b = Builder()
    b.foyer([("DEM", 30), ("ENF", 4)], ressources=9000)
    caf, cpam, links = b.write(tmp_path)
    out = tmp_path / "out"
    ok = _cli(
        "detect",
        "--caf",
        str(caf),
        "--cpam",
        str(cpam),
        "--links",
        str(links),
        "--out",
        str(out),
        "--rules",
        "monoparent_sous_plafond_sans_css,a_verifier",
    )
    assert ok.returncode == 0, ok.stderr
    assert "monoparent_sous_plafond_sans_css\t1" in ok.stdout
    assert {p.name for p in out.iterdir()} == {
        "targets.parquet",
        "aggregates.csv",
        "detect_stats.json",
    }
    pl.read_parquet(links).drop("cpam_handle").write_parquet(links)
    bad = _cli(
        "detect",
        "--caf",
        str(caf),
        "--cpam",
        str(cpam),
        "--links",
        str(links),
        "--out",
        str(tmp_path / "out2"),
    )
    assert bad.returncode == 2
    assert "links.parquet" in bad.stderr and "cpam_handle" in bad.stderr
    assert not (tmp_path / "out2").exists()
