"""Figures back at re-identification: the centre only had positions relative to the ceilings;
the CAF fills the resources and both ceilings into its lists from its own extract, with the same
computation as its features (pipeline/shared/features.py) and the table of the reference date."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from reid_builders import _pad, write_agency

from pipeline.agency.reidentify import reidentify

RUN = {"run_date": "2025-10-06", "convention_id": "test"}


def _csv(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, separator=";", encoding="utf8", decimal_comma=True,
                       infer_schema_length=0)


def test_caf_list_shows_resources_and_the_ceilings_of_its_household(tmp_path: Path) -> None:
    paths = write_agency(tmp_path, full_extract=True)
    reidentify("caf", paths["targets"], paths["work"], tmp_path / "out", run_info=RUN)
    q1 = _csv(tmp_path / "out" / "cible_Q1.csv")
    fa = q1.filter(pl.col("Référence") == _pad("fa")).row(0, named=True)
    fb = q1.filter(pl.col("Référence") == _pad("fb")).row(0, named=True)
    # fa: allocataire + child of 10 -> 2 persons (2025 table): 15 508 / 20 936 EUR; housing aid:
    # the 2-person forfait 155.16 x 12 = 1 861.92 EUR added to 1 000.50 EUR
    assert float(fa["Plafond CSS gratuite"].replace(",", ".")) == 15508
    assert float(fa["Plafond CSS avec participation"].replace(",", ".")) == 20936
    assert float(fa["Ressources CSS 12 mois (avec forfait logement)"].replace(",", ".")) == \
        round(1000.5 + 1861.92, 2)
    assert float(fa["Ressources CAF 12 mois (hors forfait logement)"].replace(",", ".")) == 1000.5
    # fb: one person: 10 339 / 13 957 EUR, no housing
    assert float(fb["Plafond CSS gratuite"].replace(",", ".")) == 10339
    assert float(fb["Plafond CSS avec participation"].replace(",", ".")) == 13957


def test_targets_carry_no_figures_the_list_still_does(tmp_path: Path) -> None:
    """The central targets have rule-level reasons only; the list's figures come from here."""
    paths = write_agency(tmp_path, full_extract=True)
    targets = pl.read_parquet(paths["targets"])
    assert not {"plafond_gratuite", "ressources_12m", "css_fin"} & set(targets.columns)
    reidentify("caf", paths["targets"], paths["work"], tmp_path / "out", run_info=RUN)
    q2 = _csv(tmp_path / "out" / "cible_Q2.csv")
    assert q2["Plafond CSS gratuite"].null_count() == 0
