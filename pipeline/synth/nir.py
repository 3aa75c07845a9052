"""NIR (numéro d'inscription au répertoire) with a valid key, vectorised.

Layout: sex (1/2; 7/8 for a provisional number given to someone born abroad), year (2), month
(2), birth place (5: département + commune, 2A/2B for Corsica, 97x + 2 digits overseas, 99 +
country code abroad), order (3), key (2) = 97 - (first 13 digits mod 97), with 2A -> 19 and
2B -> 18 for the key computation.
"""

from __future__ import annotations

import numpy as np
import polars as pl


def place_number(code: str) -> int:
    """Numeric value of a 5-character birth place for the key (2A -> 19, 2B -> 18)."""
    return int(code.replace("2A", "19").replace("2B", "18"))


def nir_key(n13: np.ndarray) -> np.ndarray:
    """Control key of 13-digit numbers (int64)."""
    return 97 - (n13 % 97)


def key_is_valid(nir: str) -> bool:
    """True when a 15-character NIR carries the key of its first 13 characters."""
    if len(nir) != 15:
        return False
    body = nir[:13].replace("2A", "19").replace("2B", "18")
    if not (body.isdigit() and nir[13:].isdigit()):
        return False
    return 97 - int(body) % 97 == int(nir[13:])


def build(
    rng: np.random.Generator,
    sexe: np.ndarray,
    year: np.ndarray,
    month: np.ndarray,
    place_idx: np.ndarray,
    places: list[str],
    provisional: np.ndarray,
) -> pl.Series:
    """15-character NIRs, unique across the population (orders redrawn on collision)."""
    n = len(sexe)
    first = np.where(provisional, sexe + 6, sexe).astype(np.int64)
    yy = (year % 100).astype(np.int64)
    mm = month.astype(np.int64)
    pnum = np.array([place_number(c) for c in places], dtype=np.int64)[place_idx]
    order = rng.integers(1, 1000, n).astype(np.int64)
    ident = ((first * 100 + yy) * 100 + mm) * 1000 + place_idx.astype(np.int64)
    for _ in range(50):
        uid = ident * 1000 + order
        _, first_pos = np.unique(uid, return_index=True)
        dup = np.ones(n, dtype=bool)
        dup[first_pos] = False
        if not dup.any():
            break
        order[dup] = rng.integers(1, 1000, int(dup.sum()))
    n13 = first * 10**12 + yy * 10**10 + mm * 10**8 + pnum * 10**3 + order
    key = nir_key(n13)
    place_s = pl.Series(places, dtype=pl.String).gather(place_idx)
    df = pl.DataFrame({"f": first, "y": yy, "m": mm, "p": place_s, "o": order, "k": key})
    z = lambda c, w: pl.col(c).cast(pl.String).str.zfill(w)  # noqa: E731
    return df.select(
        pl.concat_str([z("f", 1), z("y", 2), z("m", 2), pl.col("p"), z("o", 3), z("k", 2)])
        .alias("nir")
    ).to_series()
