"""The agencies' files for the detecting operator (docs/SEPARATION.md): what the rules read,
without the row structure the linking operator holds. Pure polars in the shared layer: the
agencies will write these files; until the chain runs the protocol, the central engine derives
the same tables from the exports (pipeline/central/detect/detection_inputs.py).

The CAF's household file has one row per household, no per-person row, so that the household's
size never reaches the party that reads its features.

With the structure out of its sight, values the structure used to give away can be coarsened to
what the rules read (pipeline/shared/rules.yaml): `personne_seule` is kept only where aah_isole
reads it (a lone AAH recipient without prime d'activité; elsewhere « autre »), and with it the
AAH rate; `a_ppa` does not leave (aah_isole's « NOT a_ppa » holds wherever `personne_seule` is
left; the reverse rule's RSA-or-PPA flag travels per linked CPAM handle); a household the CAF
knows opposed leaves its flag only. The contact person is the household's first handle, as the
per-person engine picked it; the CAF re-picks its contact person at re-identification.
"""

from __future__ import annotations

import polars as pl

FEATURES = ["type_foyer", "position_plafond_css", "a_rsa", "a_aah", "aah_taux_plein"]


def household_rows(export: pl.DataFrame) -> pl.DataFrame:
    """(foyer, handle, features..., opposition, date_reference) from the CAF's export rows."""
    rows = export.with_columns([pl.lit(None, dtype=pl.Boolean).alias(c) for c in FEATURES
                                if c not in export.columns])
    households = (rows.sort("handle")
                  .group_by("foyer", maintain_order=True)
                  .agg(pl.col("handle").first(),
                       *[pl.col(c).first() for c in FEATURES],
                       pl.col("a_ppa").first(),
                       pl.col("opposition").fill_null(False).any(),
                       pl.col("date_reference").drop_nulls().first()))
    lone_aah = ((pl.col("type_foyer") == "personne_seule") & pl.col("a_aah").fill_null(False)
                & ~pl.col("a_ppa").fill_null(False))
    kept = ~pl.col("opposition")
    return households.with_columns(
        type_foyer=pl.when((pl.col("type_foyer") == "personne_seule") & ~lone_aah)
        .then(pl.lit("autre")).otherwise(pl.col("type_foyer")),
        aah_taux_plein=pl.when(lone_aah).then(pl.col("aah_taux_plein")),
    ).drop("a_ppa").with_columns(
        [pl.when(kept).then(pl.col(c)).alias(c) for c in FEATURES]
    ).sort("foyer")


def caf_minima(export: pl.DataFrame, links: pl.DataFrame) -> pl.DataFrame:
    """CAF, after the links: (cpam_handle, a_minima) for each coverage person linked to one of
    its persons, the reverse rule's CAF side (RSA or prime d'activité in the household). No
    CAF household id: D cannot group the coverage persons by household."""
    households = export.group_by("foyer").agg(
        (pl.col("a_rsa").fill_null(False) | pl.col("a_ppa").fill_null(False)).any()
        .alias("a_minima"))
    return (links.select("caf_handle", "cpam_handle")
            .join(export.select(pl.col("handle").alias("caf_handle"), "foyer"), on="caf_handle")
            .join(households, on="foyer")
            .select("cpam_handle", "a_minima")
            .sort("cpam_handle"))


def insured_rows(export: pl.DataFrame) -> pl.DataFrame:
    """Coverage side: (handle, foyer, opposition) of the insured persons with a free CSS in
    force, the reverse rule's perimeter; the opposition is their group's (an opposed group's
    rows are emptied at export, so none of them is in the perimeter anyway)."""
    return (export.with_columns(pl.col("opposition").fill_null(False).any().over("foyer"))
            .filter(pl.col("css_gratuite_en_cours").fill_null(False))
            .select("handle", "foyer", "opposition")
            .sort("handle"))
