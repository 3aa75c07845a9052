"""NIR (numéro d'inscription au répertoire) with a valid key, vectorised.

Layout: sex (1/2; 7/8 for a provisional number given to someone born abroad), year (2), month
(2), birth place (5: département + commune, 2A/2B for Corsica, 97x + 2 digits overseas, 99 +
country code abroad), order (3), key (2) = 97 - (first 13 digits mod 97), with 2A -> 19 and
2B -> 18 for the key computation.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pipeline.common.errors import PipelineError

# steps coprime with 999 (= 27 x 37): walking a group with one of them never repeats an order
_STEPS = np.array([1, 2, 4, 5, 7, 8, 10, 11, 13, 14, 16, 17, 19, 20, 22, 23, 25, 26, 28, 29,
                   31, 32, 34, 35, 38, 40, 41, 43, 44, 46, 47, 49, 50, 52, 53, 55])


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


class OrderRegistry:
    """How many order numbers each (sex, birth month, place) cell has used so far.

    Lets a dataset be generated in chunks while every NIR stays unique across the whole run.
    """

    def __init__(self) -> None:
        self.used = pl.DataFrame(schema={"ident": pl.Int64, "used": pl.Int64})

    def take(self, cells: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Reserve `counts` numbers in each cell; return how many each cell had used before."""
        req = pl.DataFrame({"ident": cells, "n": counts, "i": np.arange(len(cells))})
        before = (req.join(self.used, on="ident", how="left").sort("i")["used"]
                  .fill_null(0).to_numpy())
        self.used = (
            pl.concat([self.used, req.select("ident", used=pl.col("n"))])
            .group_by("ident").agg(pl.col("used").sum())
        )
        return before


def unique_orders(ident: np.ndarray, registry: OrderRegistry | None = None) -> np.ndarray:
    """Order numbers 1..999, distinct among persons sharing `ident` (sex, birth month, place).

    One sort: inside each cell, the r-th member gets (start + r x step) mod 999 + 1 where start
    and step (coprime with 999) are fixed functions of the cell, so the walk never repeats while
    a cell has at most 999 members (the real limit of the NIR as well). With a registry, r
    continues where the previous chunks stopped.
    """
    n = len(ident)
    srt = np.argsort(ident, kind="stable")
    sid = ident[srt]
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = sid[1:] != sid[:-1]
    group_start = np.flatnonzero(new_group)
    group_of = np.cumsum(new_group) - 1
    rank = np.arange(n) - group_start[group_of]
    if registry is not None and n:
        sizes = np.diff(np.append(group_start, n))
        rank = rank + registry.take(sid[group_start], sizes)[group_of]
    if n and rank.max() >= 999:
        raise PipelineError(
            "Trop de personnes nées le même mois au même lieu (plus de 999 numéros d'ordre) : "
            "réduire --households"
        )
    start = (sid * 7919) % 999
    step = _STEPS[(sid // 7) % len(_STEPS)]
    order = np.empty(n, dtype=np.int64)
    order[srt] = (start + rank * step) % 999 + 1
    return order


def build(
    sexe: np.ndarray,
    year: np.ndarray,
    month: np.ndarray,
    place: pl.Series,
    provisional: np.ndarray,
    registry: OrderRegistry | None = None,
) -> pl.Series:
    """15-character NIRs, unique across the population. `place`: 5-character birth places."""
    first = np.where(provisional, sexe + 6, sexe).astype(np.int64)
    yy = (year % 100).astype(np.int64)
    mm = month.astype(np.int64)
    pnum = place.str.replace("2A", "19", literal=True).str.replace("2B", "18", literal=True)
    pnum = pnum.cast(pl.Int64).to_numpy()
    corsica = place.str.contains("2[AB]").to_numpy().astype(np.int64)
    ident = (((first * 100 + yy) * 100 + mm) * 100000 + pnum) * 2 + corsica
    order = unique_orders(ident, registry)
    n13 = first * 10**12 + yy * 10**10 + mm * 10**8 + pnum * 10**3 + order
    key = nir_key(n13)
    # two integer -> text conversions instead of five zero-padded ones
    head = (first * 100 + yy) * 100 + mm  # 5 digits, first digit never 0
    tail = 100_000 + order * 100 + key  # "1" + order (3) + key (2)
    df = pl.DataFrame({"h": head, "p": place, "t": tail})
    return df.select(
        pl.concat_str([pl.col("h").cast(pl.String), pl.col("p"),
                       pl.col("t").cast(pl.String).str.slice(1)]).alias("nir")
    ).to_series()
