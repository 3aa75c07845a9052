"""What the agency exports for detection: the R.861-2 membership and the optional CAF fields."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pseudonymise"))
from helpers_pseudonymise import KEY, caf_frame, caf_person

from pipeline.pseudonymise.core import build

# REF of the helpers: 2026-03-31. A dependant born on 2001-03-31 turns 25 that day.
ROWS = [
    caf_person(line=2, role="DEM", date_naissance=dt.date(1960, 1, 1)),
    caf_person(line=3, role="ENF", date_naissance=dt.date(2001, 4, 1)),  # 24
    caf_person(line=4, role="ENF", date_naissance=dt.date(2001, 3, 31)),  # 25 today
    caf_person(line=5, role="APC", date_naissance=dt.date(1940, 6, 1)),  # 85
    caf_person(line=6, role="APC", date_naissance=None),  # unknown: kept in the household
]


def _by_line(export: pl.DataFrame, handles: pl.DataFrame) -> pl.DataFrame:
    return handles.select("handle", "line").join(export, on="handle").sort("line")


def test_a_charge_css_follows_r861_2_and_no_age_leaves() -> None:
    export, handles, _ = build(caf_frame(ROWS), "caf", KEY, seed=1)
    assert _by_line(export, handles)["a_charge_css"].to_list() == [True, True, False, False, True]
    assert "age" not in export.columns and "date_naissance" not in export.columns


def test_optional_columns_leave_only_when_the_extract_has_them() -> None:
    export, _, _ = build(caf_frame(ROWS), "caf", KEY, seed=1)
    assert not {"aah_taux_plein", "aide_logement_mensuelle"} & set(export.columns)
    extended = caf_frame(ROWS).with_columns(
        aah_taux_plein=pl.lit(True), aide_logement_mensuelle=pl.lit(100.0)
    )
    export, handles, _ = build(extended, "caf", KEY, seed=1)
    got = _by_line(export, handles)
    assert got["aah_taux_plein"].to_list() == [True] * 5
    assert got["aide_logement_mensuelle"].to_list() == [100.0] * 5
    # a convention that does not list them keeps them home
    allowed = [c for c in export.columns if c != "aide_logement_mensuelle"]
    export, _, _ = build(extended, "caf", KEY, seed=1, allowed_fields=allowed)
    assert "aide_logement_mensuelle" not in export.columns


def test_optional_columns_from_the_raw_extract_to_the_export(tmp_path: Path) -> None:
    """Raw CAF extract with the optional columns -> ingest -> export (rules: test_detect_rules)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ingest"))
    from ingest_fixtures import CAF_HEADER, caf_rows, write_caf

    from pipeline.ingest import ingest

    extra = ["O;150,50;LOCATAIRE", "N;;PROPRIETAIRE", ";;", "1;;HEBERGE_GRATUIT", "NON;0;AUTRE"]
    rows = [f"{r};{e}" for r, e in zip(caf_rows(), extra, strict=True)]
    header = CAF_HEADER + ";aah_taux_plein;aide_logement_mensuelle;statut_occupation"
    result = ingest("caf", write_caf(tmp_path / "caf.csv", rows, header=header), tmp_path / "out")
    ingested = pl.read_parquet(result.ingested).sort("line")
    assert ingested["aah_taux_plein"].to_list() == [True, False, None, True, False]
    assert ingested["aide_logement_mensuelle"].to_list() == [150.5, None, None, None, 0.0]
    assert ingested["statut_occupation"].to_list() == [
        "LOCATAIRE", "PROPRIETAIRE", None, "HEBERGE_GRATUIT", "AUTRE"]
    export, handles, _ = build(ingested, "caf", KEY, seed=1)
    got = _by_line(export, handles)
    assert got["aide_logement_mensuelle"].to_list() == [150.5, None, None, None, 0.0]
