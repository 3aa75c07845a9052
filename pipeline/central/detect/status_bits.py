"""The detecting operator's part of the masked household sums (pipeline/shared/masked_sums.py):
S - T = rho * (count of linked persons with the bit), zero exactly when none has it, else a
uniform non-zero residue. D learns the household's OR bits, not the persons nor their number."""

from __future__ import annotations

import polars as pl

from pipeline.shared.masked_sums import P, bit_names


def unmask(sums: pl.DataFrame, shares: pl.DataFrame) -> pl.DataFrame:
    """(foyer, L's clear columns..., <bit>) from L's file (foyer, trouve_cpam, opposition_liee,
    s_<bit>; null where L sends no sum) and the CAF's shares (foyer, t_<bit>): a bit is null
    where L sent no sum, else whether any linked person has it."""
    names = bit_names(sums, "s_")
    carried = [c for c in sums.columns if c != "foyer" and not c.startswith("s_")]
    sent = sums.filter(pl.any_horizontal([pl.col(f"s_{b}").is_not_null() for b in names]))
    both = sent.join(shares, on="foyer", how="left")
    missing = both.filter(pl.any_horizontal([pl.col(f"t_{b}").is_null() for b in names])).height
    if missing or bit_names(shares, "t_") != names:
        raise ValueError(f"sommes masquées incohérentes : {missing} foyer(s) sans la part de "
                         "la CAF, ou bits différents")
    bits = both.select("foyer", *[
        ((pl.col(f"s_{b}") + P - pl.col(f"t_{b}")) % P != 0).alias(b) for b in names])
    return sums.select("foyer", *carried).join(bits, on="foyer", how="left")
