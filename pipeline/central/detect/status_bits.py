"""The detecting operator's part of the masked household sums (pipeline/shared/masked_sums.py):
S - T = rho * (count of linked persons with the bit), zero exactly when none has it, else a
uniform non-zero residue. D learns the household's OR bits, not the persons nor their number."""

from __future__ import annotations

import polars as pl

from pipeline.shared.masked_sums import P, bit_names


def unmask(sums: pl.DataFrame, shares: pl.DataFrame) -> pl.DataFrame:
    """(foyer, <bit>) from L's sums (foyer, s_<bit>) and the CAF's shares (foyer, t_<bit>)."""
    names = bit_names(sums, "s_")
    both = sums.join(shares, on="foyer", how="full", coalesce=True)
    missing = both.filter(pl.any_horizontal(pl.all().is_null())).height
    if missing or bit_names(shares, "t_") != names:
        raise ValueError(f"sommes masquées incohérentes : {missing} foyer(s) sans la part de "
                         "l'opérateur de liaison ou de la CAF, ou bits différents")
    return both.select("foyer", *[
        ((pl.col(f"s_{b}") + P - pl.col(f"t_{b}")) % P != 0).alias(b) for b in names])
