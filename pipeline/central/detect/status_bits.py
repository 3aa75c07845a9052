"""The detecting operator's part of the masked household sums (pipeline/shared/masked_sums.py):
S - T = rho * (count of linked persons with the bit), zero exactly when none has it, else a
uniform non-zero residue. D learns the household's OR bits, not the persons nor their number."""

from __future__ import annotations

import polars as pl

from pipeline.shared.masked_sums import P, bit_names


def unmask(sums: pl.DataFrame, shares: pl.DataFrame) -> pl.DataFrame:
    """(foyer, <bit>) from L's sums (foyer, s_<bit>; null where L sends none) and the CAF's
    shares (foyer, t_<bit>): null where L sent no sum, else whether any linked person has it."""
    names = bit_names(sums, "s_")
    sent = sums.filter(pl.any_horizontal([pl.col(f"s_{b}").is_not_null() for b in names]))
    both = sent.join(shares, on="foyer", how="left")
    missing = both.filter(pl.any_horizontal([pl.col(f"t_{b}").is_null() for b in names])).height
    if missing or bit_names(shares, "t_") != names:
        raise ValueError(f"sommes masquées incohérentes : {missing} foyer(s) sans la part de "
                         "la CAF, ou bits différents")
    bits = both.select("foyer", *[
        ((pl.col(f"s_{b}") + P - pl.col(f"t_{b}")) % P != 0).alias(b) for b in names])
    return sums.select("foyer").join(bits, on="foyer", how="left")


def household_view(households: pl.DataFrame, sums: pl.DataFrame,
                   shares: pl.DataFrame) -> pl.DataFrame:
    """What D holds and the rules read: the CAF's household file, L's « found » flag and the
    OR bits (`bit_<name>`; null where L sent no sum)."""
    bits = unmask(sums.drop("trouve_cpam"), shares)
    return (households
            .join(sums.select("foyer", "trouve_cpam"), on="foyer", how="left")
            .join(bits.rename({b: f"bit_{b}" for b in bits.columns if b != "foyer"}),
                  on="foyer", how="left")
            .sort("foyer"))


def insured_view(insured: pl.DataFrame, minima: pl.DataFrame) -> pl.DataFrame:
    """The reverse rule's view at D: the CPAM's insured persons with a free CSS (handle,
    opposition) and, when linked, the CAF's bits for them (cpam_handle, a_minima, opposition)."""
    caf = minima.rename({"cpam_handle": "handle", "opposition": "opposition_caf"})
    return insured.join(caf, on="handle", how="left").select(
        "handle",
        css_gratuite_active=pl.lit(True),
        lie_caf=pl.col("a_minima").is_not_null(),
        a_minima=pl.col("a_minima").fill_null(False),
        opposition=pl.col("opposition") | pl.col("opposition_caf").fill_null(False))
