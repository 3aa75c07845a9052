"""Masked household sums: the detecting operator learns whether any linked person has a status,
never which person nor how many (issue 11, separation of linking and detection; docs/SEPARATION.md).

The household rules read, per CAF household, a few OR-aggregates over its linked CPAM persons
(any active CSS, any unreadable status...). Whoever computes them from per-person statuses also
learns how many persons are linked, and that count alone takes the share of households singled
out (k = 1) on the sample from 0.50 % to 1.96 % (`make bench-kanon-separation`). So the
operator that links (L: tokens and row structure, no status) and the operator that detects
(D: household features, no structure) are two parties, and the aggregates reach D through a
secure sum over the prime field Z_p (p = 2^31 - 1), per bit j:

- the CPAM (holds the linkage key K) sends L, instead of the bit b_ij of its person i, the
  one-time pad c_ij = b_ij + m_ij, with m_ij = PRF_K(handle_i, j): L reads nothing;
- the CAF (holds K) sends L a factor rho_Hj = 1 + PRF_K(foyer_H, j) mod (p - 1) per household;
- L sums over the CPAM persons linked to a member of H: S_Hj = rho_Hj * sum(c_ij), sends S to
  D, and sends the CAF the CPAM handles linked to its persons;
- the CAF computes T_Hj = rho_Hj * sum(m_ij) over the same handles and sends T to D;
- D computes S_Hj - T_Hj = rho_Hj * X_Hj, X_Hj the number of linked persons with the bit: zero
  when none has it, else a uniform non-zero residue. rho is drawn per household *and per bit*:
  one rho for all bits would hand D the ratios X_Hj / X_Hk of the counts.

Each party alone learns nothing beyond its role (L: structure; the CAF: which CPAM handles link
to its persons, random values it cannot resolve; D: the OR bits). L and the CAF together would
read the CPAM's bits, L and D together the counts: the parties must not collude, as in every
separation design (Kelman, Bass & Holman 2002). Columns only: no Python loop over rows.
"""

from __future__ import annotations

import polars as pl

P = 2_147_483_647  # 2^31 - 1, prime: a product of two residues fits in 62 bits

# The per-person bits the household rules aggregate (pipeline/central/detect/sql/households.sql
# reads their OR): computed by the CPAM from its own export columns. The opposition is not among
# them: L holds both exports' opposition flags already (an opposed row must be linkable to be
# excluded) and sends its household OR in the clear.
BITS: dict[str, pl.Expr] = {
    "css_active": pl.col("statut_css").is_in(["en_cours", "fin_proche"]).fill_null(False),
    "css_en_cours": (pl.col("statut_css") == "en_cours").fill_null(False),
    "css_terminee_recente": (pl.col("statut_css") == "terminee_recente").fill_null(False),
    # a linked person whose CSS status is not stated never reads as "no CSS"
    "css_illisible": (pl.col("statut_css") == "a_verifier").fill_null(True),
}
MASK_INFO = "masque_statut/"  # HKDF labels under K of the CPAM's pads and the CAF's factors
FACTOR_INFO = "facteur_foyer/"


def person_bits(cpam: pl.DataFrame) -> pl.DataFrame:
    """(handle, one Boolean per bit) from coverage rows (statut_css)."""
    return cpam.select("handle", *[expr.alias(b) for b, expr in BITS.items()])


def linked_values(members: pl.DataFrame, values: pl.DataFrame, links: pl.DataFrame,
                  how: str = "inner") -> pl.DataFrame:
    """One row per link (foyer, cpam_handle, the coverage person's `values` columns): the
    household (handle, foyer of `members`) of the CAF person and the values (handle, ...) of
    the coverage person it is linked to."""
    return (links.select("caf_handle", "cpam_handle")
            .join(members.select(pl.col("handle").alias("caf_handle"), "foyer"),
                  on="caf_handle")
            .join(values.rename({"handle": "cpam_handle"}), on="cpam_handle", how=how)
            .drop("caf_handle"))


def household_or(members: pl.DataFrame, bits: pl.DataFrame, links: pl.DataFrame) -> pl.DataFrame:
    """(foyer, <bit>) = the OR over the persons linked to a member (handle, foyer) of each
    household with a link: what the masked sums give D, computed in the clear (the reference,
    and the interim input of the engine until the chain runs the protocol)."""
    names = [c for c in bits.columns if c != "handle"]
    return linked_values(members, bits, links).group_by("foyer").agg(
        pl.col(b).any() for b in names)


def bit_names(frame: pl.DataFrame, prefix: str) -> list[str]:
    """The bits a frame carries as `<prefix><bit>` columns, in column order."""
    return [c.removeprefix(prefix) for c in frame.columns if c.startswith(prefix)]


def household_sums(members: pl.DataFrame, rho: pl.DataFrame, values: pl.DataFrame,
                   links: pl.DataFrame, prefix: str, out: str) -> pl.DataFrame:
    """(foyer, <out><bit>) = rho_<bit> * the sum of `values` (handle, <prefix><bit>) over the
    CPAM persons linked to a member (handle, foyer) of the household, mod p; one row per
    household with at least one link. L runs it on the pads, the CAF on the masks."""
    names = bit_names(values, prefix)
    sums = linked_values(members, values, links).group_by("foyer").agg(
        (pl.col(f"{prefix}{b}").sum() % P).alias(b) for b in names)
    return sums.join(rho, on="foyer").select(
        "foyer", *[(pl.col(b) * pl.col(f"rho_{b}") % P).alias(f"{out}{b}") for b in names])
