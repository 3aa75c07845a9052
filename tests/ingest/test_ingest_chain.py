"""End to end: inconsistent households planted in a fresh synthetic extract never reach the
CCAS targets, and ingest counts them (`python -m pipeline run`, like `make match`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from pipeline.shared.separation import DETECTION_OUT

ROOT = Path(__file__).resolve().parents[2]
RULES = ["monoparent_sous_plafond_sans_css", "rsa_sans_css", "css_non_renouvelee",
         "sous_plafond_sans_css", "aah_isole"]


def _flagged(dataset: Path) -> pl.DataFrame:
    """Households the generator's truth lists as targets (no opposition, no recent contact)."""
    truth = pl.read_csv(dataset / "truth" / "households.csv", separator=";",
                        schema_overrides={"matricule": pl.String})
    flagged = pl.any_horizontal(pl.col(r) == 1 for r in RULES if r in truth.columns)
    return truth.filter(flagged & (pl.col("opposition") == 0) & (pl.col("contacte_6m") == 0)
                        & (pl.col("a_verifier") == 0))


def _plant(raw: Path, two_dem: str, isole: str, negative: str) -> None:
    """Two applicants, a spouse in an ISOLE dossier, negative resources (appended or edited in
    place, so every other row keeps its line number)."""
    lines = raw.read_text(encoding="utf-8").splitlines()
    extra = []
    for i, line in enumerate(lines[1:], start=1):
        f = line.split(";")
        if f[0] == negative:
            f[15] = "-" + f[15]
            lines[i] = ";".join(f)
        elif f[0] in (two_dem, isole) and f[1] == "DEM":
            g = list(f)
            g[1] = "DEM" if f[0] == two_dem else "CJT"
            g[2], g[5], g[7] = "", "Camille", "1" if f[7] == "2" else "2"
            extra.append(";".join(g))
    raw.write_text("\n".join(lines + extra) + "\n", encoding="utf-8")


@pytest.mark.slow
def test_planted_inconsistent_households_are_not_targets(tmp_path):
    from pipeline.synth import generate

    dataset = tmp_path / "data"
    generate(households=400, seed=4242, noise=1.0, out=dataset)
    flagged = _flagged(dataset)
    isole = flagged.filter(pl.col("monoparent_sous_plafond_sans_css") == 1)["matricule"][0]
    others = [m for m in flagged["matricule"].to_list() if m != isole]
    two_dem, negative = others[0], others[1]
    _plant(dataset / "raw" / "caf_extract.csv", two_dem, isole, negative)

    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--dataset", str(dataset), "--out", str(out),
         "--convention", str(ROOT / "conventions" / "demo-flers.yaml"), "--seed", "4242",
         "--today", "2026-11-22"],
        capture_output=True, text=True, cwd=ROOT, check=False,
        env={**os.environ, "NONRECOURS_QUIET": "1"},
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]

    stats = json.loads((out / "caf" / "ingest_stats.json").read_text(encoding="utf-8"))
    rules = stats["quarantaine"]["par_regle"]
    assert rules["plusieurs_demandeurs"]["dossiers"] == 1
    assert rules["isole_avec_conjoint"]["dossiers"] == 1
    assert rules["ressources_negatives"]["dossiers"] == 1

    raw = pl.read_csv(dataset / "raw" / "caf_extract.csv", separator=";", infer_schema=False,
                      columns=["matricule"]).with_row_index("line", offset=2)
    raw = raw.with_columns(pl.col("line").cast(pl.Int64))
    handles = pl.read_parquet(out / "caf" / "handles.parquet").select("line", "handle")
    targets = pl.read_parquet(out / DETECTION_OUT / "targets.parquet").filter(
        pl.col("agence") == "caf").select("handle")
    listed = set(targets.join(handles, on="handle").join(raw, on="line")["matricule"].to_list())
    assert listed, "the mapping from targets to dossiers found nothing"
    assert set(others[2:]) & listed, "other flagged households are still listed"
    assert not {two_dem, isole, negative} & listed
