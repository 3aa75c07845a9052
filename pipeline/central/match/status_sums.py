"""The linking operator's part of the separated detection (docs/SEPARATION.md): per CAF
household, rho * the sum of the coverage side's pads over its linked persons
(pipeline/shared/masked_sums.py), and what L knows in the clear and D needs.

L holds tokens, row structure and both exports' opposition flags (an opposed row stays linkable
so that it can exclude its household), plus pads and factors: uniform residues that tell it
nothing about the statuses. What it sends D is what a rule reads: the « found » flag (an adult
of the household is linked: the rules' perimeter) and the household's linked opposition for
every household, the sums for found households only; nothing for a household the CAF knows
opposed (its flag, in the CAF's household file, already excludes it)."""

from __future__ import annotations

import polars as pl

from pipeline.shared.masked_sums import household_sums, linked_values


def _linked(caf: pl.DataFrame, cpam: pl.DataFrame, links: pl.DataFrame) -> pl.DataFrame:
    """(foyer, cpam_handle, _opp: the coverage row's opposition) per link."""
    return linked_values(caf, cpam.select("handle", pl.col("opposition").fill_null(False)
                                          .alias("_opp")), links, how="left")


def household_flags(caf: pl.DataFrame, cpam: pl.DataFrame, links: pl.DataFrame
                    ) -> pl.DataFrame:
    """(foyer, trouve_cpam, opposition_liee) for every CAF household not opposed at the CAF:
    an adult of it is linked; a person linked to one of its members is opposed."""
    kept = caf.filter(~pl.col("opposition").fill_null(False).any().over("foyer"))
    # the membership test as a column first: inside an aggregation it would be evaluated
    # against the whole list once per household
    found = (kept.with_columns(
        _adult_linked=pl.col("adulte").fill_null(False)
        & pl.col("handle").is_in(links["caf_handle"].implode()))
        .group_by("foyer").agg(pl.col("_adult_linked").any().alias("trouve_cpam")))
    opposed = _linked(kept, cpam, links).group_by("foyer").agg(
        pl.col("_opp").fill_null(False).any().alias("opposition_liee"))
    return (found.join(opposed, on="foyer", how="left")
            .with_columns(pl.col("opposition_liee").fill_null(False)))


def sent_where_read(caf: pl.DataFrame, cpam: pl.DataFrame, links: pl.DataFrame,
                    values: pl.DataFrame) -> pl.DataFrame:
    """(foyer, trouve_cpam, opposition_liee, values...) for every household not opposed at
    the CAF, `values` (foyer, ...: sums, or bits in the clear) kept for found households only,
    since no rule reads a CSS bit of a household that is not found."""
    cols = [c for c in values.columns if c != "foyer"]
    return (household_flags(caf, cpam, links)
            .join(values, on="foyer", how="left")
            .with_columns([pl.when(pl.col("trouve_cpam")).then(pl.col(c)).alias(c)
                           for c in cols])
            .sort("foyer"))


def linking_sums(caf: pl.DataFrame, cpam: pl.DataFrame, rho: pl.DataFrame,
                 masked: pl.DataFrame, links: pl.DataFrame) -> pl.DataFrame:
    """L's file for D: (foyer, trouve_cpam, opposition_liee, s_<bit>), from the CAF rows
    (handle, foyer, adulte, opposition), the coverage rows (handle, opposition), the CAF's
    factors (foyer, rho_<bit>), the coverage side's pads (handle, c_<bit>) and the links."""
    return sent_where_read(caf, cpam, links, household_sums(caf, rho, masked, links, "c_", "s_"))


def insured_opposition(caf: pl.DataFrame, cpam: pl.DataFrame, links: pl.DataFrame
                       ) -> pl.DataFrame:
    """L's file for D's reverse rule: (cpam_handle, opposition_foyer) for each linked coverage
    person, whether its CAF household is opposed (at the CAF, or through a linked person);
    no CAF household id."""
    household = (_linked(caf, cpam, links)
                 .join(caf.group_by("foyer").agg(
                     pl.col("opposition").fill_null(False).any().alias("_caf")), on="foyer")
                 .with_columns(
                     (pl.col("_caf") | pl.col("_opp").fill_null(False).any().over("foyer"))
                     .alias("opposition_foyer")))
    return household.select("cpam_handle", "opposition_foyer").sort("cpam_handle")
