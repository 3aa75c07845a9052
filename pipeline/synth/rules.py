"""Ground-truth rule semantics (docs/CONTRACTS.md "Rules"), computed on the clean population.

Written independently of pipeline/detect on purpose: the two implementations check each other.
Only the official figures are shared (params.CssTable, read from the same YAML file).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

from pipeline.synth.params import CssTable

RULE_IDS = [
    "monoparent_sous_plafond_sans_css",
    "rsa_sans_css",
    "css_non_renouvelee",
    "sous_plafond_sans_css",
    "aah_isole",
]
ROLE_RANK_GROUP = {"DEM": 0, "CJT": 1, "ENF": 2, "APC": 2}


def ceilings(persons: pl.DataFrame, households: pl.DataFrame, table: CssTable) -> pl.DataFrame:
    """Free and contribution ceilings per household (hid), with R.861-3 ranks.

    Rank order: allocataire, spouse, then dependants from oldest to youngest; a minor in
    alternating residence counts for half of the increment of its rank.
    `persons` needs hid, role, by, bm, bd, age, alt; `households` needs hid, code_commune.
    """
    ranked = (
        persons.select("hid", "role", "by", "bm", "bd", "age", "alt", "pos")
        .with_columns(grp=pl.col("role").replace_strict(ROLE_RANK_GROUP, return_dtype=pl.Int8))
        .sort(["hid", "grp", "by", "bm", "bd", "pos"])
        .with_columns(rank=pl.int_range(1, pl.len() + 1).over("hid"))
        .join(households.select("hid", "code_commune"), on="hid", how="left")
    )
    rank = np.minimum(ranked["rank"].to_numpy(), 5)
    half = (ranked["alt"].to_numpy() & (ranked["age"].to_numpy() < 18))
    factor = np.where(half, 0.5, 1.0)
    overseas = ranked["code_commune"].str.slice(0, 3).is_in(
        list(table.overseas_departements)).fill_null(False).to_numpy()
    out = {}
    for kind in ("gratuite", "participation"):
        metro = table.increments(kind, overseas=False)[rank]
        dom = table.increments(kind, overseas=True)[rank]
        out[f"plafond_{kind}"] = np.where(overseas, dom, metro) * factor
    return (
        ranked.select("hid").with_columns(
            pl.Series("plafond_gratuite", out["plafond_gratuite"]),
            pl.Series("plafond_participation", out["plafond_participation"]),
        )
        .group_by("hid")
        .agg(pl.col("plafond_gratuite").sum(), pl.col("plafond_participation").sum())
        .sort("hid")
    )


def css_resources(households: pl.DataFrame, table: CssTable) -> pl.Expr:
    """ressources_12m + 12 x housing forfait (by size, 3+ capped) when AL is received."""
    f1, f2, f3 = table.forfait_monthly
    forfait = (
        pl.when(pl.col("n") == 1).then(pl.lit(f1))
        .when(pl.col("n") == 2).then(pl.lit(f2))
        .otherwise(pl.lit(f3))
    )
    return pl.col("ressources_12m") + pl.when(pl.col("p_AL")).then(forfait * 12).otherwise(0.0)


def household_truth(hh: pl.DataFrame, ref: date, table: CssTable) -> pl.DataFrame:
    """Rule flags per CAF household (0/1), from the clean household and its clean CPAM status.

    `hh` needs: n, nkids, situation_familiale, ressources_12m, p_* prestation flags, a_cpam,
    plafond_gratuite, plafond_participation, css, css_debut, css_fin.
    """
    r = pl.lit(ref)
    active = (pl.col("css") != "NON") & (pl.col("css_debut") <= r) & (r <= pl.col("css_fin"))
    active = active.fill_null(False)
    res = css_resources(hh, table)
    under_free = res <= pl.col("plafond_gratuite")
    under_part = res <= pl.col("plafond_participation")
    rsa = pl.col("p_RSA") | pl.col("p_RSAM")
    ended = (
        (pl.col("css") != "NON")
        & (pl.col("css_fin") < r)
        & (pl.col("css_fin") >= pl.lit(ref - timedelta(days=365)))
    ).fill_null(False)
    ending = (active & (pl.col("css_fin") <= pl.lit(ref + timedelta(days=60)))).fill_null(False)
    found = pl.col("a_cpam")
    isole_enf = (pl.col("situation_familiale") == "ISOLE") & (pl.col("nkids") >= 1)
    flags = {
        "monoparent_sous_plafond_sans_css": found & isole_enf & under_free & ~active,
        "rsa_sans_css": found & rsa & ~active,
        "css_non_renouvelee": found & ((~active & ended) | ending) & under_part,
        "sous_plafond_sans_css": found & ~active & under_part,
        "aah_isole": found & pl.col("p_AAH") & (pl.col("n") == 1) & ~active
        & pl.lit(ref >= table.aah_since),
        "a_verifier": ~found & (under_part | rsa),
    }
    return hh.with_columns(
        [e.cast(pl.Int8).alias(k) for k, e in flags.items()] + [res.alias("ressources_css")]
    )
