"""The linking operator's part of the masked household sums (pipeline/shared/masked_sums.py):
per CAF household, rho * the sum of the CPAM's pads over its linked persons. L holds tokens,
row structure, pads and factors: uniform residues that tell it nothing about the statuses.

What L sends the detecting operator is what a rule reads (docs/SEPARATION.md): the « found »
flag (an adult of the household is linked: the rules' perimeter), the opposition sum for every
linked household, the other sums for found households only, nothing for a household the CAF
knows opposed (its flag, in the CAF's household file, already excludes it)."""

from __future__ import annotations

import polars as pl

from pipeline.shared.masked_sums import household_sums

ALL_LINKED = ("opposition",)  # the bits D needs for every linked household, not only found ones


def found_households(caf: pl.DataFrame, links: pl.DataFrame) -> pl.DataFrame:
    """(foyer, trouve_cpam) for every CAF household: an adult of it is linked."""
    linked = pl.col("handle").is_in(links["caf_handle"].implode())
    return caf.group_by("foyer").agg(
        (pl.col("adulte").fill_null(False) & linked).any().alias("trouve_cpam"))


def linking_sums(caf: pl.DataFrame, rho: pl.DataFrame, masked: pl.DataFrame,
                 links: pl.DataFrame) -> pl.DataFrame:
    """(foyer, trouve_cpam, s_<bit>) from the CAF rows (handle, foyer, adulte, opposition), the
    CAF's factors (foyer, rho_<bit>), the CPAM's pads (handle, c_<bit>) and the links
    (caf_handle, cpam_handle); for D. A sum D does not need is null."""
    opposed = caf.filter(pl.col("opposition").fill_null(False))["foyer"].unique().implode()
    kept = caf.filter(~pl.col("foyer").is_in(opposed))
    found = found_households(kept, links)
    sums = household_sums(kept, rho, masked, links, "c_", "s_")
    css = [c for c in sums.columns if c.startswith("s_") and c[2:] not in ALL_LINKED]
    return (found.join(sums, on="foyer", how="left")
            .with_columns([pl.when(pl.col("trouve_cpam")).then(pl.col(c)).alias(c)
                           for c in css])
            .sort("foyer"))
