"""CLI: help texts, and the leakage-scan command failing on a planted identifier."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from helpers_pseudonymise import KEY
from typer.testing import CliRunner

from pipeline.agency.pseudonymise.core import build
from pipeline.agency.pseudonymise.synthetic import ingested
from pipeline.cli import app
from pipeline.common.errors import PipelineError
from pipeline.common.tables import write_parquet

runner = CliRunner()


def test_help() -> None:
    for command in ("pseudonymise", "leakage-scan"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, result.output
    assert "--opposition" in runner.invoke(app, ["pseudonymise", "--help"]).output


def test_leakage_scan_clean_then_planted(tmp_path: Path) -> None:
    export, _, _ = build(ingested("cpam", 300, seed=2), "cpam", KEY, seed=1)
    clean = write_parquet(export, tmp_path / "cpam.pseudo.parquet", sort_by=["handle"])
    ok = runner.invoke(app, ["leakage-scan", str(clean)])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["scan"]["ok"] is True
    planted = write_parquet(export.with_columns(css=pl.lit("1850578006084")),
                            tmp_path / "bad.parquet", sort_by=["handle"])
    bad = runner.invoke(app, ["leakage-scan", str(planted)])
    assert bad.exit_code != 0
    assert isinstance(bad.exception, PipelineError)
    assert "1850578006084" not in str(bad.exception)
