"""`python -m pipeline link`: outputs on success, a readable InputError on a missing export."""

from __future__ import annotations

import json

from match_fixtures import noisy_population, write_exports
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.common.errors import InputError


def test_link_command_writes_the_four_outputs(tmp_path):
    caf, cpam, _ = noisy_population(60, seed=3)
    a, b = write_exports(tmp_path, caf, cpam)
    out = tmp_path / "central"
    result = CliRunner().invoke(app, ["link", "--caf", str(a), "--cpam", str(b),
                                      "--out", str(out), "--threads", "1"])
    assert result.exit_code == 0, result.output
    for name in ("links.parquet", "link_explanations.parquet", "clerical_review.parquet",
                 "link_stats.json"):
        assert (out / name).exists(), name
    stats = json.loads((out / "link_stats.json").read_text())
    assert stats["funnel"]["links_total"] > 0
    assert {"prior", "comparisons"} <= set(stats["model"])


def test_link_command_refuses_a_missing_export(tmp_path):
    result = CliRunner().invoke(app, ["link", "--caf", str(tmp_path / "absent.parquet"),
                                      "--cpam", str(tmp_path / "absent2.parquet"),
                                      "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    # the top-level main() turns this into « ERREUR … » and exit code 2
    assert isinstance(result.exception, InputError)
    assert "absent.parquet" in str(result.exception)
    assert not (tmp_path / "o" / "links.parquet").exists()
