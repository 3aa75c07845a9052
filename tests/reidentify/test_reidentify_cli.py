"""The `reidentify` and `feedback` commands end to end, and the refusal exit code."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from reid_builders import write_agency


def test_reidentify_feedback_cli_and_refusal(run_cli, tmp_path: Path) -> None:
    paths = write_agency(tmp_path)
    out = tmp_path / "listes"
    args = [
        "reidentify",
        "--agency",
        "caf",
        "--targets",
        str(paths["targets"]),
        "--workdir",
        str(paths["work"]),
        "--out",
        str(out),
        "--contacts",
        str(paths["contacts"]),
        "--run-date",
        "2026-11-22",
    ]
    ok = run_cli(*args)
    assert ok.returncode == 0, ok.stderr
    assert (out / "cible_Q1.xlsx").exists()
    tpl = run_cli("feedback", "template", "--listes", str(out), "--out", str(tmp_path / "m.csv"))
    assert tpl.returncode == 0, tpl.stderr
    back = run_cli(
        "feedback",
        "load",
        "--listes",
        str(out),
        "--feedback",
        str(tmp_path / "m.csv"),
        "--out",
        str(tmp_path / "retours"),
    )
    assert back.returncode == 0, back.stderr
    assert (tmp_path / "retours" / "retours_diffusable.csv").exists()
    # a forged handle: refusal (exit 3), no identifier in the message
    t = pl.read_parquet(paths["targets"])
    forged = t.head(1).with_columns(pl.lit("e" * 32).alias("handle"))
    pl.concat([t, forged]).write_parquet(paths["targets"])
    refused = run_cli(*args[:-6], "--out", str(tmp_path / "other"))
    assert refused.returncode == 3, refused.stderr
    assert "non émis" in refused.stderr and "e" * 32 not in refused.stderr
    assert not (tmp_path / "other").exists()
