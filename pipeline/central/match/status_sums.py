"""The linking operator's part of the masked household sums (pipeline/shared/masked_sums.py):
per CAF household, rho * the sum of the CPAM's pads over its linked persons. L holds tokens,
row structure, pads and factors: uniform residues that tell it nothing about the statuses."""

from __future__ import annotations

import polars as pl

from pipeline.shared.masked_sums import household_sums


def linking_sums(caf: pl.DataFrame, rho: pl.DataFrame, masked: pl.DataFrame,
                 links: pl.DataFrame) -> pl.DataFrame:
    """(foyer, s_<bit>) from the CAF rows (handle, foyer), the CAF's factors (foyer, rho_<bit>),
    the CPAM's pads (handle, c_<bit>) and the links (caf_handle, cpam_handle); for D."""
    return household_sums(caf, rho, masked, links, "c_", "s_")
