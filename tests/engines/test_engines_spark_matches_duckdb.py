"""`match --engine spark` and `detecter --engine spark` give the same central outputs as DuckDB,
byte for byte.

One small synthetic territory goes through the whole chain on DuckDB (`pipeline run`); the
linking operator's step is then run again on the same transmitted files (exports and residues)
with Spark in local mode, and so is the detecting operator's on its received files; every
result file the agencies and the reports read is compared: links, clerical review,
explanations, link statistics, masked sums, targets, aggregates, detection statistics.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from spark_support import needs_spark

from pipeline.shared.separation import (
    DETECTION_AUDIT,
    DETECTION_DIR,
    DETECTION_OUT,
    HANDOFF_DIR,
    SHARES_DIR,
    SUMS_FILE,
)

ROOT = Path(__file__).resolve().parents[2]
CONVENTION = ROOT / "conventions" / "demo-flers.yaml"
TODAY = "2026-11-22"
SAME = ["links.parquet", "clerical_review.parquet", "link_explanations.parquet",
        "link_stats.json", f"{HANDOFF_DIR}/{SUMS_FILE}", f"{DETECTION_OUT}/targets.parquet",
        f"{DETECTION_OUT}/aggregates.csv", f"{DETECTION_OUT}/detect_stats.json"]

pytestmark = [needs_spark, pytest.mark.slow]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NONRECOURS_QUIET": "1"}
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, check=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from pipeline.synth import generate

    base = tmp_path_factory.mktemp("spark")
    generate(households=150, seed=7171, noise=1.0, out=base / "data")
    chain = _cli("run", "--dataset", str(base / "data"), "--out", str(base / "out"),
                 "--convention", str(CONVENTION), "--today", TODAY)
    assert chain.returncode == 0, chain.stderr[-3000:]
    audit = base / "audit_spark.jsonl"
    shutil.copy(base / "out" / "audit.jsonl", audit)
    spark = _cli("match", "--convention", str(CONVENTION),
                 "--caf", str(base / "out" / "transfer" / "caf"),
                 "--cpam", str(base / "out" / "transfer" / "cpam"),
                 "--residu", f"caf={base / 'out' / 'transfer' / 'residu' / 'caf'}",
                 "--residu", f"cpam={base / 'out' / 'transfer' / 'residu' / 'cpam'}",
                 "--out", str(base / "spark"), "--audit-log", str(audit), "--today", TODAY,
                 "--engine", "spark", "--threads", "2", "--memory-limit", "1GB")
    assert spark.returncode == 0, spark.stderr[-3000:]
    inbox = base / "out" / "transfer" / DETECTION_DIR
    shutil.copy(base / "out" / DETECTION_AUDIT, base / "audit_detection_spark.jsonl")
    detecting = _cli("detecter", "--convention", str(CONVENTION),
                     "--detection", f"caf={inbox / 'caf'}", "--detection", f"cpam={inbox / 'cpam'}",
                     "--separation", str(inbox / HANDOFF_DIR), "--parts", str(inbox / SHARES_DIR),
                     "--out", str(base / "spark" / DETECTION_OUT),
                     "--audit-log", str(base / "audit_detection_spark.jsonl"), "--today", TODAY,
                     "--engine", "spark", "--threads", "2", "--memory-limit", "1GB")
    assert detecting.returncode == 0, detecting.stderr[-3000:]
    duck = base / "duck"  # the two DuckDB operators' folders side by side, as for Spark
    shutil.copytree(base / "out" / "central", duck)
    shutil.copytree(base / "out" / DETECTION_OUT, duck / DETECTION_OUT)
    return {"duckdb": duck, "spark": base / "spark"}


@pytest.mark.parametrize("name", SAME)
def test_spark_output_is_byte_identical_to_duckdb(runs: dict[str, Path], name: str) -> None:
    duck, spark = (runs[k] / name for k in ("duckdb", "spark"))
    assert duck.stat().st_size > 0
    assert spark.read_bytes() == duck.read_bytes(), name


def test_the_comparison_is_not_vacuous(runs: dict[str, Path]) -> None:
    import polars as pl

    links = pl.read_parquet(runs["spark"] / "links.parquet")
    targets = pl.read_parquet(runs["spark"] / DETECTION_OUT / "targets.parquet")
    assert links.height > 100 and links["pass"].n_unique() >= 3
    assert targets.height > 10
