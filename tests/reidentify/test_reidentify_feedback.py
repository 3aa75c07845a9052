"""Outcome feedback read back from the filled lists: round trip, validation, rates, suppression."""

from __future__ import annotations

import datetime as dt
import io
import shutil
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from reid_builders import write_lists

from pipeline.agency.reidentify.feedback import load_feedback
from pipeline.common.errors import InputError
from pipeline.shared.suppression import SECONDARY_LABEL, primary_label


@pytest.fixture
def listes(tmp_path: Path) -> Path:
    return write_lists(tmp_path)


def _read_csv(path: Path) -> pl.DataFrame:
    raw = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    return pl.read_csv(io.BytesIO(raw), separator=";", infer_schema=False)


def _fill(path: Path, outcomes: dict[str, tuple[str, object]]) -> None:
    """Type outcomes into the « Liste » sheet as a worker would: {Nom: (résultat, date)}."""
    wb = openpyxl.load_workbook(path)
    ws = wb["Liste"]
    h = next(r for r in range(1, 20) if ws.cell(row=r, column=1).value == "Priorité")
    cols = {c.value: c.column for c in ws[h]}
    for r in range(h + 1, ws.max_row + 1):
        name = ws.cell(row=r, column=cols["Nom"]).value
        if name in outcomes:
            result, when = outcomes[name]
            ws.cell(row=r, column=cols["Résultat du contact"], value=result)
            ws.cell(row=r, column=cols["Date du contact"], value=when)
    wb.save(path)


def _rates(out: Path) -> dict[tuple[str, str], dict[str, str]]:
    df = _read_csv(out / "retours_taux.csv")
    return {(r["regle"], r["quartier"]): r for r in df.iter_rows(named=True)}


def test_xlsx_round_trip_gives_rates_per_rule_and_quartier(listes: Path, tmp_path: Path) -> None:
    when = dt.datetime(2026, 11, 30)
    # Q1: MARTIN (sous_plafond), BERNARD (monoparent + sous_plafond), LEROY, ABADIE (rsa)
    _fill(
        listes / "cible_Q1.xlsx",
        {
            "BERNARD": ("droit ouvert", when),
            "MARTIN": ("pas joignable", None),
            "LEROY": ("refus", when),
            "ABADIE": ("droit ouvert", when),
        },
    )
    _fill(listes / "cible_Q2.xlsx", {"PETIT": ("déjà fait", when)})
    res = load_feedback(listes, [listes], tmp_path / "retours")
    assert res["fichiers_lus"] == 3  # cible_Q1, cible_Q2, a_verifier
    assert res["resultats_renseignes"] == 5 and res["foyers_listes"] == 6
    assert res["sans_retour"] == 1  # DURAND in Q2
    rates = _rates(tmp_path / "retours")
    rsa_q1 = rates[("rsa_sans_css", "Q1")]
    assert (rsa_q1["listes"], rsa_q1["joints"], rsa_q1["droit_ouvert"], rsa_q1["refus"]) == (
        "2",
        "2",
        "1",
        "1",
    )
    assert rsa_q1["taux_droit_ouvert"] == "0.5"
    sous_q1 = rates[("sous_plafond_sans_css", "Q1")]
    assert (sous_q1["listes"], sous_q1["joints"], sous_q1["pas_joignable"]) == ("2", "1", "1")
    assert sous_q1["taux_droit_ouvert"] == "1.0"
    rsa_q2 = rates[("rsa_sans_css", "Q2")]
    assert (rsa_q2["listes"], rsa_q2["deja_fait"], rsa_q2["renseignes"]) == ("2", "1", "1")
    shared = (tmp_path / "retours" / "retours_diffusable.csv").read_text(encoding="utf-8-sig")
    # every figure is under the threshold in this tiny example: nothing but zeros may be published
    for line in shared.splitlines()[1:]:
        for cell in line.split(";")[2:]:
            assert cell in {primary_label(), SECONDARY_LABEL, "0"}


def test_csv_round_trip(listes: Path, tmp_path: Path) -> None:
    df = _read_csv(listes / "cible_Q2.csv")
    filled = df.with_columns(
        pl.when(pl.col("Nom") == "PETIT").then(pl.lit("Droit ouvert")).alias("Résultat du contact"),
        pl.when(pl.col("Nom") == "PETIT").then(pl.lit("30/11/2026")).alias("Date du contact"),
    )
    path = tmp_path / "cible_Q2_rempli.csv"
    path.write_bytes(b"\xef\xbb\xbf" + filled.write_csv(separator=";").encode())
    res = load_feedback(listes, path, tmp_path / "retours")
    assert res["resultats_renseignes"] == 1
    assert _rates(tmp_path / "retours")[("rsa_sans_css", "Q2")]["droit_ouvert"] == "1"


def test_bad_choice_bad_date_and_foreign_reference_name_file_line_column(
    listes: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.xlsx"
    shutil.copy(listes / "cible_Q1.xlsx", bad)
    _fill(bad, {"MARTIN": ("peut-être", None)})
    with pytest.raises(InputError) as err:
        load_feedback(listes, bad, tmp_path / "r")
    assert err.value.column == "Résultat du contact" and err.value.path == str(bad)
    ws = openpyxl.load_workbook(bad)["Liste"]
    row = next(c.row for c in ws["F"] if c.value == "MARTIN")
    assert err.value.line == row
    shutil.copy(listes / "cible_Q1.xlsx", bad)
    _fill(bad, {"MARTIN": ("joint", "hier")})
    with pytest.raises(InputError) as err:
        load_feedback(listes, bad, tmp_path / "r")
    assert err.value.column == "Date du contact"
    df = _read_csv(listes / "cible_Q1.csv").with_columns(pl.lit("0" * 32).alias("Référence"))
    foreign = tmp_path / "foreign.csv"
    df.write_csv(foreign, separator=";")
    with pytest.raises(InputError) as err:
        load_feedback(listes, foreign, tmp_path / "r")
    assert err.value.column == "Référence" and err.value.line == 2
    with pytest.raises(InputError, match="en double"):
        load_feedback(listes, [listes / "cible_Q1.xlsx", listes / "cible_Q1.csv"], tmp_path / "r")
