"""The `reidentify` and `feedback load` commands end to end, and their refusals."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import polars as pl
import pytest
from reid_builders import write_agency

CONVENTION = Path(__file__).resolve().parents[2] / "conventions" / "demo-flers.yaml"


def _args(paths: dict[str, Path], out: Path) -> list[str]:
    return [
        "reidentify",
        "--agency",
        "caf",
        "--targets",
        str(paths["targets"]),
        "--workdir",
        str(paths["work"]),
        "--out",
        str(out),
        "--territory",
        str(paths["territory"]),
        "--run-date",
        "2026-11-22",
    ]


def _one_french_line(stderr: str) -> str:
    """The error message (the terminal may wrap it at its width), never a traceback."""
    assert "Traceback" not in stderr and stderr.startswith("ERREUR"), stderr
    return " ".join(ln.strip() for ln in stderr.splitlines())


def test_refuses_without_convention_or_contact_history(run_cli, tmp_path: Path) -> None:
    paths = write_agency(tmp_path)
    out = tmp_path / "listes"
    no_conv = run_cli(*_args(paths, out), "--contacts", str(paths["contacts"]))
    assert no_conv.returncode != 0
    assert "--convention obligatoire" in _one_french_line(no_conv.stderr)
    no_hist = run_cli(*_args(paths, out), "--convention", str(CONVENTION))
    assert no_hist.returncode != 0
    line = _one_french_line(no_hist.stderr)
    assert "--contacts" in line and "--sans-historique" in line
    assert not out.exists()


@pytest.mark.skipif(not CONVENTION.exists(), reason="demo convention not present")
def test_reidentify_then_feedback_load_from_the_filled_list(run_cli, tmp_path: Path) -> None:
    paths = write_agency(tmp_path)
    out = tmp_path / "listes"
    args = [*_args(paths, out), "--convention", str(CONVENTION)]
    ok = run_cli(*args, "--contacts", str(paths["contacts"]))
    assert ok.returncode == 0, ok.stderr
    wb = openpyxl.load_workbook(out / "cible_Q1.xlsx")
    ws = wb["Liste"]
    h = next(r for r in range(1, 20) if ws.cell(row=r, column=1).value == "Priorité")
    col = next(c.column for c in ws[h] if c.value == "Résultat du contact")
    ws.cell(row=h + 1, column=col, value="droit ouvert")
    wb.save(out / "cible_Q1.xlsx")
    back = run_cli(
        "feedback", "load", "--listes", str(out), "--feedback", str(out),
        "--out", str(tmp_path / "retours"),
    )  # fmt: skip
    assert back.returncode == 0, back.stderr
    rates = pl.read_csv(tmp_path / "retours" / "retours_taux.csv", separator=";")
    assert rates["droit_ouvert"].sum() >= 1
    # --sans-historique: runs, and nobody is held back for a recent contact
    again = run_cli(*args, "--sans-historique", "--out", str(tmp_path / "l2"))
    assert again.returncode == 0, again.stderr


def test_forged_handle_refused_with_exit_3(run_cli, tmp_path: Path) -> None:
    paths = write_agency(tmp_path)
    t = pl.read_parquet(paths["targets"])
    forged = t.head(1).with_columns(pl.lit("e" * 32).alias("handle"))
    pl.concat([t, forged]).write_parquet(paths["targets"])
    other = tmp_path / "other"
    refused = run_cli(*_args(paths, other), "--convention", str(CONVENTION), "--sans-historique")
    assert refused.returncode == 3, refused.stderr
    assert "non émis" in refused.stderr and "e" * 32 not in refused.stderr
    assert not other.exists()
