"""Outcome feedback: template round trip, validation, hit rates and suppression."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from reid_builders import write_agency

from pipeline.common.errors import InputError
from pipeline.reidentify import reidentify
from pipeline.reidentify.feedback import OUTCOMES, load_feedback, write_template


@pytest.fixture
def listes(tmp_path: Path) -> Path:
    paths = write_agency(tmp_path, opposed_handle=None)
    out = tmp_path / "listes"
    reidentify("caf", paths["targets"], paths["work"], out, run_info={"run_date": "2026-11-22"})
    return out


def _read_csv(path: Path) -> pl.DataFrame:
    raw = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    return pl.read_csv(io.BytesIO(raw), separator=";", infer_schema=False)


def test_template_rows_and_no_contact_fields(listes: Path, tmp_path: Path) -> None:
    csv = write_template(listes, tmp_path / "modele.csv")
    df = _read_csv(csv)
    assert df.columns == ["reference", "quartier", "regles", *OUTCOMES]
    assert df.height == 7  # 6 targets + 1 a_verifier, nobody held back here
    assert df["regles"][-1] == "a_verifier"
    xlsx = write_template(listes, tmp_path / "modele.xlsx")
    ws = openpyxl.load_workbook(xlsx).active
    assert [c.value for c in ws[1]] == df.columns
    assert ws.max_row == 8


def test_load_computes_rates_and_suppresses(listes: Path, tmp_path: Path) -> None:
    df = _read_csv(write_template(listes, tmp_path / "modele.csv"))
    filled = df.with_columns(
        pl.when(pl.int_range(pl.len()) < 4)
        .then(pl.lit("O"))
        .otherwise(pl.lit("N"))
        .alias("contacte"),
        pl.when(pl.int_range(pl.len()) < 2)
        .then(pl.lit("oui"))
        .otherwise(pl.lit(""))
        .alias("droit_ouvert"),
    )
    path = tmp_path / "rempli.csv"
    filled.write_csv(path, separator=";")
    res = load_feedback(listes, path, tmp_path / "retours")
    assert res["retours_lus"] == 7 and res["sans_retour"] == 0
    rates = _read_csv(tmp_path / "retours" / "retours_taux.csv")
    assert set(rates["regle"].to_list()) >= {"rsa_sans_css", "sous_plafond_sans_css"}
    assert rates["contacte"].cast(pl.Int64).sum() >= 4
    shared = (tmp_path / "retours" / "retours_diffusable.csv").read_text(encoding="utf-8-sig")
    # every figure is < 11 in this tiny example: nothing but zeros may be published
    for line in shared.splitlines()[1:]:
        for cell in line.split(";")[2:]:
            assert cell in {"< 11", "s", "0"}


def test_load_rejects_bad_values_with_line_and_column(listes: Path, tmp_path: Path) -> None:
    df = _read_csv(write_template(listes, tmp_path / "modele.csv"))
    bad = df.with_columns(
        pl.when(pl.int_range(pl.len()) == 2)
        .then(pl.lit("peut-être"))
        .otherwise(pl.lit(""))
        .alias("refus")
    )
    path = tmp_path / "bad.csv"
    bad.write_csv(path, separator=";")
    with pytest.raises(InputError) as err:
        load_feedback(listes, path, tmp_path / "r")
    assert err.value.line == 4 and err.value.column == "refus"
    foreign = df.with_columns(pl.lit("0" * 32).alias("reference"))
    foreign.write_csv(path, separator=";")
    with pytest.raises(InputError) as err:
        load_feedback(listes, path, tmp_path / "r")
    assert err.value.column == "reference"
