"""The `detect` command: outputs on success, a readable error and exit code on bad input."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from detect_builders import Builder


def test_detect_cli_writes_outputs_then_refuses_bad_links(run_cli, tmp_path: Path) -> None:
    b = Builder()
    b.foyer([("DEM", 30), ("ENF", 4)], ressources=9000)
    caf, cpam, links = b.write(tmp_path)
    out = tmp_path / "out"
    ok = run_cli(
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
    bad = run_cli(
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
