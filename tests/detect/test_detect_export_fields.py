"""What the agency exports for detection: features computed at source, never the figures."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pseudonymise"))
from helpers_pseudonymise import KEY, caf_frame, caf_person

from pipeline.agency.pseudonymise.core import build

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


FIGURES = {"age", "date_naissance", "ressources_12m", "prestations", "a_charge_css", "rang_foyer",
           "mineur", "situation_familiale", "residence_alternee", "aide_logement_mensuelle",
           "statut_occupation", "css", "css_debut", "css_fin", "medecin_traitant"}


def test_r861_2_applies_at_source_and_only_the_position_leaves() -> None:
    """DEM + ENF of 24 + APC of unknown age count (3 persons: 18 609 / 25 123 EUR in 2025); the
    ENF of 25 and the APC of 85 do not (with them, 5 persons: 20 000 EUR would be under the free
    ceiling of 25 846 EUR). Only the position leaves, no amount, age or membership flag."""
    rows = [{**r, "ressources_12m": 20000.0, "prestations": []} for r in ROWS]
    export, handles, _ = build(caf_frame(rows), "caf", KEY, seed=1)
    got = _by_line(export, handles)
    assert got["position_plafond_css"].to_list() == ["sous_plafond_participation"] * 5
    # contract 3: « monoparent » only where a rule reads it (under the free ceiling)
    assert got["type_foyer"].to_list() == ["autre"] * 5
    assert got["a_rsa"].to_list() == [False] * 5
    assert not FIGURES & set(export.columns)
    lower = [{**r, "ressources_12m": 15000.0, "prestations": []} for r in ROWS]
    export, handles, _ = build(caf_frame(lower), "caf", KEY, seed=1)
    got = _by_line(export, handles)
    assert got["position_plafond_css"].to_list() == ["sous_plafond_gratuite"] * 5
    assert got["type_foyer"].to_list() == ["monoparent"] * 5
    assert not {"role", "sexe", "nir_statut", "code_commune", "quartier"} & set(export.columns)


def test_optional_columns_leave_only_when_the_extract_has_them() -> None:
    export, _, _ = build(caf_frame(ROWS), "caf", KEY, seed=1)
    assert not {"aah_taux_plein", "aide_logement_mensuelle"} & set(export.columns)
    extended = caf_frame(ROWS).with_columns(
        aah_taux_plein=pl.lit(True), aide_logement_mensuelle=pl.lit(100.0)
    )
    export, handles, _ = build(extended, "caf", KEY, seed=1)
    got = _by_line(export, handles)
    assert got["aah_taux_plein"].to_list() == [True] * 5
    # the housing aid is used at source (CSS resources) and never leaves
    assert "aide_logement_mensuelle" not in export.columns
    # a convention that does not list aah_taux_plein keeps it home
    allowed = [c for c in export.columns if c != "aah_taux_plein"]
    export, _, _ = build(extended, "caf", KEY, seed=1, allowed_fields=allowed)
    assert "aah_taux_plein" not in export.columns


def test_optional_columns_from_the_raw_extract_to_the_export(tmp_path: Path) -> None:
    """Raw CAF extract with the optional columns -> ingest -> export (rules: test_detect_rules)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ingest"))
    from ingest_fixtures import CAF_HEADER, caf_rows, write_caf

    from pipeline.agency.ingest import ingest

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
    assert not FIGURES & set(export.columns)
    # dossier-level: the first known value in R.861-3 order, on every row of the dossier
    per_foyer = got.group_by("foyer").agg(pl.col("aah_taux_plein").n_unique())
    assert per_foyer["aah_taux_plein"].max() == 1
