"""The chain `make match` runs must only use commands and options the stage CLIs really have."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.chain import stages
from pipeline.cli import app
from pipeline.shared.separation import DETECTION_AUDIT, DETECTION_OUT

CHAIN = stages(
    Path("sample_data"), Path("out"), Path("conventions/demo-flers.yaml"), today="2026-11-22"
)


def test_chain_separates_agency_and_central_folders():
    sides = {s.side for s in CHAIN}
    assert sides == {"caf", "cpam", "central", "detection", "transfer", "transfer_residue",
                     "transfer_detection"}
    second = [s for s in CHAIN if s.side == "central"][-1]
    assert "caf=out/transfer/residu/caf" in second.argv  # the staged exchange's answers
    central = next(s for s in CHAIN if s.side == "central" and s.argv[0] == "match")
    joined = " ".join(central.argv)
    assert "--keys out/operateur/keys" in joined  # it signs the masked sums
    assert "out/caf" not in joined and "out/cpam" not in joined, joined
    assert "out/transfer/caf" in joined and "out/transfer/cpam" in joined
    # the detecting operator reads its own inbox only: no export, no link, no agency folder
    detecting = next(s for s in CHAIN if s.side == "detection")
    read = [a.partition("=")[2] or a for a in detecting.argv if "out/" in a]
    assert all(p.startswith(("out/transfer/detection/", f"out/{DETECTION_OUT}",
                             f"out/{DETECTION_AUDIT}")) for p in read), read
    for stage in CHAIN:
        if stage.side in {"caf", "cpam"}:
            paths = [a for a in stage.argv if a.startswith("out/")]
            assert all(
                p.startswith(f"out/{stage.side}")
                or p.startswith(f"out/{DETECTION_OUT}/targets")
                or p == f"out/central/residu/demande_{stage.side}.csv"  # the centre's request
                or p == f"out/central/separation/liens_{stage.side}.parquet"  # its link list
                for p in paths
            ), (stage.name, paths)
    order = [s.argv[0] for s in CHAIN if s.argv]
    assert order.index("parts") > max(i for i, c in enumerate(order) if c == "match")
    assert order.index("detecter") > order.index("parts")
    assert order.index("reidentify") > order.index("detecter")


@pytest.mark.parametrize(
    "stage", [s for s in CHAIN if s.argv], ids=lambda s: f"{s.side}-{s.argv[0]}"
)
def test_every_stage_command_and_option_exists(stage):
    result = CliRunner().invoke(app, [*stage.argv, "--help"])
    assert result.exit_code == 0, result.output


def test_dry_run_prints_one_command_per_stage():
    result = CliRunner().invoke(app, ["run", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.output.count("python -m pipeline ") == sum(1 for s in CHAIN if s.argv)
