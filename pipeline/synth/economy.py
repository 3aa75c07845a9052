"""Resources and benefits per household, consistent with each other and with the quartier.

Resources are drawn as a ratio to the household's free-CSS ceiling, from a mixture whose weights
depend on the household type and on whether the quartier is a QPV (low incomes over-represented):
RSA level, low (under the free ceiling), middle (under the contribution ceiling), above.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pipeline.synth.households import AAH_SINGLE, LONE_PARENT

PRESTATIONS = ["RSA", "RSAM", "PPA", "ASF", "AAH", "AL", "AF", "CF", "PAJE"]
# income bands: RSA level, low, middle, above
BANDS_DEFAULT = [0.18, 0.17, 0.13, 0.52]
BANDS_FRAGILE = [0.36, 0.22, 0.12, 0.30]  # QPV or lone parent
BANDS_CPAM_ONLY = [0.06, 0.10, 0.10, 0.74]


def draw(
    rng: np.random.Generator, hh: pl.DataFrame, persons: pl.DataFrame, plafond_gratuite: np.ndarray
) -> pl.DataFrame:
    """Add ressources_12m, band, p_<benefit> flags, prestations and contact fields to `hh`."""
    g = hh.height
    htype = hh["htype"].to_numpy()
    caf = hh["caf"].to_numpy()
    fragile = hh["qpv"].to_numpy() | (htype == LONE_PARENT)
    probs = np.where(fragile[:, None], BANDS_FRAGILE, BANDS_DEFAULT)
    probs = np.where(caf[:, None], probs, BANDS_CPAM_ONLY)
    band = (rng.random(g)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    band = np.minimum(band, 3)
    ratio = np.select(
        [band == 0, band == 1, band == 2],
        [np.where(rng.random(g) < 0.2, 0.0, rng.uniform(0.0, 0.45, g)),
         rng.uniform(0.45, 0.99, g), rng.uniform(1.0, 1.34, g)],
        1.36 + rng.gamma(2.0, 0.7, g),
    )
    res = ratio * plafond_gratuite
    aah = htype == AAH_SINGLE
    res = np.where(aah, rng.uniform(9000, 14000, g), res)
    band = np.where(aah, 2, band)
    res = np.round(res, 2)

    kids = (
        persons.filter(pl.col("role") == "ENF")
        .group_by("hid").agg(youngest=pl.col("age").min(), n3=(pl.col("age") >= 3).sum())
    )
    k = hh.select("hid").join(kids, on="hid", how="left").sort("hid")
    youngest = k["youngest"].fill_null(99).to_numpy()
    n3 = k["n3"].fill_null(0).to_numpy()
    nkids = hh["nkids"].to_numpy()
    lone = htype == LONE_PARENT
    u = lambda: rng.random(g)  # noqa: E731
    rsa_any = (band == 0) & (u() < 0.85) & caf
    rsam = rsa_any & lone & (youngest < 3) & (u() < 0.7)
    flags = {
        "RSA": rsa_any & ~rsam,
        "RSAM": rsam,
        "PPA": (band >= 1) & (ratio < 1.3) & ~aah & (u() < 0.45),
        "ASF": lone & (u() < 0.35),
        "AAH": aah | ((htype != AAH_SINGLE) & (u() < 0.02)),
        "AL": np.where(band <= 2, u() < 0.7, u() < 0.12),
        "AF": (nkids >= 2) & (u() < 0.97),
        "CF": (n3 >= 3) & (ratio < 2.0) & (u() < 0.8),
        "PAJE": (youngest < 3) & (u() < 0.85),
    }
    flags = {k2: v & caf for k2, v in flags.items()}
    cols = [pl.Series(f"p_{k2}", v) for k2, v in flags.items()]
    out = hh.with_columns(
        pl.Series("ressources_12m", res), pl.Series("band", band.astype(np.int8)), *cols,
        situation_familiale=pl.when(pl.col("couple")).then(pl.lit("COUPLE"))
        .otherwise(pl.lit("ISOLE")),
    )
    return out.with_columns(
        prestations=pl.concat_str(
            [pl.when(pl.col(f"p_{k2}")).then(pl.lit(k2)) for k2 in PRESTATIONS],
            separator=",", ignore_nulls=True,
        )
    )


def contacts(rng: np.random.Generator, hh: pl.DataFrame, postal: dict[str, str],
             streets: list[str]) -> pl.DataFrame:
    """Address, postcode and phone per household (synthetic)."""
    g = hh.height
    street = pl.Series(streets, dtype=pl.String).gather(rng.integers(0, len(streets), g))
    num = rng.integers(1, 121, g)
    phone = rng.integers(0, 10**8, g)
    mobile = pl.Series(["06", "07"]).gather(rng.integers(0, 2, g))
    has_phone = rng.random(g) < 0.85
    return hh.with_columns(
        adresse=pl.concat_str([pl.Series(num).cast(pl.String), street], separator=" "),
        code_postal=pl.col("code_commune").replace_strict(postal, default="61100"),
        telephone=pl.when(pl.Series(has_phone)).then(
            pl.concat_str([mobile, pl.Series(phone).cast(pl.String).str.zfill(8)])
        ),
    )
