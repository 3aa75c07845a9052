"""CSS status held by the CPAM for each household, consistent with resources and RSA.

Contracts last 12 months (css_fin = css_debut + 1 year - 1 day). Dates are never drawn on the
rule boundaries (css_fin exactly R - 365, R + 60 or R + 61), so the truth does not hinge on an
inclusive/exclusive reading of "within 365 / 60 days".
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

NONE, ACTIVE, RECENT, OLD = range(4)
# state probabilities [none, active, ended < 1 year, ended long ago] by situation
P_RSA = [0.15, 0.70, 0.10, 0.05]
P_FREE = [0.32, 0.50, 0.12, 0.06]
P_PART = [0.52, 0.30, 0.12, 0.06]
P_ABOVE = [0.92, 0.03, 0.03, 0.02]
P_FREE_CPAM_ONLY = [0.35, 0.55, 0.07, 0.03]


def draw(rng: np.random.Generator, hh: pl.DataFrame, ref: date) -> pl.DataFrame:
    """Add css, css_debut, css_fin to `hh` (needs ressources_css, plafonds, p_RSA, p_RSAM, caf)."""
    g = hh.height
    res = hh["ressources_css"].to_numpy()
    free = res <= hh["plafond_gratuite"].to_numpy()
    part = ~free & (res <= hh["plafond_participation"].to_numpy())
    rsa = (hh["p_RSA"] | hh["p_RSAM"]).to_numpy()
    caf = hh["caf"].to_numpy()
    probs = np.select(
        [rsa[:, None], (free & ~caf)[:, None], free[:, None], part[:, None]],
        [np.array(P_RSA), np.array(P_FREE_CPAM_ONLY), np.array(P_FREE), np.array(P_PART)],
        np.array(P_ABOVE),
    )
    state = np.minimum((rng.random(g)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1), 3)
    participation = ~(rsa | free) & (part | (rng.random(g) < 0.5))
    ref64 = np.datetime64(ref, "D")
    back = rng.integers(0, 361, g)
    start_active = ref64 - back.astype("timedelta64[D]")
    fin_recent = ref64 - rng.integers(3, 361, g).astype("timedelta64[D]")
    fin_old = ref64 - rng.integers(372, 901, g).astype("timedelta64[D]")
    show_old = rng.random(g) < 0.5
    df = pl.DataFrame({
        "state": state,
        "kind": pl.Series(["GRATUITE", "PARTICIPATION"]).gather(participation.astype(np.int64)),
        "start_active": start_active,
        "fin_recent": fin_recent, "fin_old": fin_old, "show_old": show_old,
    })
    year = pl.duration(days=1)
    df = df.with_columns(
        fin_active=pl.col("start_active").dt.offset_by("1y") - year,
    ).with_columns(
        # keep clear of the 60-day boundary: move such contracts 5 days earlier
        start_active=pl.when(
            (pl.col("fin_active") - pl.lit(ref)).dt.total_days().is_between(59, 62)
        ).then(pl.col("start_active") - pl.duration(days=5)).otherwise(pl.col("start_active")),
    ).with_columns(fin_active=pl.col("start_active").dt.offset_by("1y") - year)
    shown = (pl.col("state") == ACTIVE) | (pl.col("state") == RECENT) | (
        (pl.col("state") == OLD) & pl.col("show_old"))
    fin = (
        pl.when(pl.col("state") == ACTIVE).then(pl.col("fin_active"))
        .when(pl.col("state") == RECENT).then(pl.col("fin_recent"))
        .when(shown).then(pl.col("fin_old"))
    )
    df = df.with_columns(css_fin=fin).with_columns(
        css=pl.when(shown).then(pl.col("kind")).otherwise(pl.lit("NON")),
        css_debut=pl.when(pl.col("state") == ACTIVE).then(pl.col("start_active"))
        .otherwise(pl.col("css_fin").dt.offset_by("-1y") + year),
    ).with_columns(css_debut=pl.when(shown).then(pl.col("css_debut")))
    return hh.with_columns(df.select("css", "css_debut", "css_fin"))
