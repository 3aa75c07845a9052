"""The agencies' part of the masked household sums (pipeline/shared/masked_sums.py): keyed
pads and factors under the linkage key K, which the central parties never hold.

The CPAM masks its persons' status bits before they leave; the CAF draws one factor per
household and per bit for the linking operator, then, once the links are known, computes its
share of the unmasking for the detecting operator. All PRF values are HMAC-SHA256 under subkeys
HKDF(K, label), through the token engine (columns, no Python loop over rows).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from pipeline.agency.pseudonymise.hmac_engine import derive_subkey, get_engine, hmac_key
from pipeline.shared.masked_sums import BITS, FACTOR_INFO, MASK_INFO, P, bit_names, household_sums

_HALF = 12  # hex digits per half of a 96-bit PRF output (48 bits each)


def prf(values: pl.Series, secret: bytes, label: str, modulus: int,
        engine: str | None = None) -> pl.Series:
    """PRF_K(value) as a residue mod `modulus`: 96 bits of HMAC-SHA256 under the subkey
    HKDF(K, label), reduced as hi * 2^48 + lo (statistical bias about modulus / 2^96)."""
    digest = get_engine(engine)(values.cast(pl.String), hmac_key(derive_subkey(secret, label)),
                                2 * _HALF)
    hi = digest.str.slice(0, _HALF).str.to_integer(base=16).cast(pl.UInt64)
    lo = digest.str.slice(_HALF, _HALF).str.to_integer(base=16).cast(pl.UInt64)
    two48 = pow(2, 48, modulus)
    return (((hi % modulus) * two48 + lo % modulus) % modulus).alias(values.name)


def mask(bits: pl.DataFrame, secret: bytes, engine: str | None = None) -> pl.DataFrame:
    """CPAM side: (handle, c_<bit>) = bit + PRF_K(handle) mod p: one-time pads, for L."""
    names = [c for c in bits.columns if c != "handle"]
    return bits.select("handle", *[
        ((pl.col(b).cast(pl.UInt64) + prf(bits["handle"], secret, MASK_INFO + b, P, engine))
         % P).alias(f"c_{b}") for b in names])


def factors(foyers: pl.Series, secret: bytes, bits: Sequence[str] = tuple(BITS),
            engine: str | None = None) -> pl.DataFrame:
    """CAF side: (foyer, rho_<bit>) in [1, p - 1], one per household and per bit, for L."""
    foyers = foyers.unique(maintain_order=True).alias("foyer")
    return pl.DataFrame({"foyer": foyers}).with_columns(
        (prf(foyers, secret, FACTOR_INFO + b, P - 1, engine) + 1).alias(f"rho_{b}")
        for b in bits)


def caf_shares(caf: pl.DataFrame, rho: pl.DataFrame, links: pl.DataFrame, secret: bytes,
               engine: str | None = None) -> pl.DataFrame:
    """CAF side: (foyer, t_<bit>) = rho * the sum of the CPAM's pads over the links of its
    persons (caf_handle, cpam_handle), which L sends it; for D."""
    handles = links["cpam_handle"].unique(maintain_order=True).alias("handle")
    pads = pl.DataFrame({"handle": handles}).with_columns(
        prf(handles, secret, MASK_INFO + b, P, engine).alias(f"m_{b}")
        for b in bit_names(rho, "rho_"))
    return household_sums(caf, rho, pads, links, "m_", "t_")
