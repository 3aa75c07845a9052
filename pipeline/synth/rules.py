"""The generator's two uses of the CSS texts.

1. Sampling devices (`ceilings`, `css_resources`): vectorised, used while *drawing* the
   population (incomes as a ratio to a ceiling, the CSS status as a function of resources). They
   shape the raw extracts and are kept unchanged so that the same seed gives the same raw files.
2. The ground truth (`household_truth`): a second, deliberately simple reading of the texts in
   plain Python, one household at a time, written from docs/LEGAL.md and not from
   pipeline/central/detect
   (it imports nothing from it and shares no SQL), so that `make evaluate` can disagree with the
   engine. Only the official figures are shared (params.CssTable, read from the same YAML file).
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
RENEWAL_WINDOW_DAYS = 60  # an active CSS ending within this many days still needs renewing
LOOKBACK_DAYS = 365  # a CSS that ended within this many days before R was not renewed


def ceilings(persons: pl.DataFrame, households: pl.DataFrame, table: CssTable) -> pl.DataFrame:
    """Sampling device: free and contribution ceilings per household (hid), every member counted.

    Used to draw incomes around the ceilings; NOT the truth (which applies art. R.861-2).
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
    """Sampling device: ressources_12m + 12 x housing forfait by dossier size when AL is paid."""
    f1, f2, f3 = table.forfait_monthly
    forfait = (
        pl.when(pl.col("n") == 1).then(pl.lit(f1))
        .when(pl.col("n") == 2).then(pl.lit(f2))
        .otherwise(pl.lit(f3))
    )
    return pl.col("ressources_12m") + pl.when(pl.col("p_AL")).then(forfait * 12).otherwise(0.0)


# ---------------------------------------------------------------- the truth, from the texts


def _cells(table: CssTable, kind: str, overseas: bool) -> list[float]:
    """Official cells 1..4 and `extra`; overseas: +11.3 % rounded to the euro (half up)."""
    cells = list(getattr(table, kind))
    if overseas:
        cells = [float(int(c * (1 + table.overseas_uplift) + 0.5)) for c in cells]
    return cells


def ceiling(members: list[dict], table: CssTable, kind: str, overseas: bool) -> float:
    """Art. R.861-3: what each member of the CSS household adds, in rank order.

    Rank 1 = the table's one-person cell; ranks 2-4 = the step between two cells; beyond 4 =
    `extra`. A minor in alternating residence adds half of the step of its rank.
    """
    cells = _cells(table, kind, overseas)
    total = 0.0
    for rank, m in enumerate(members, start=1):
        if rank == 1:
            step = cells[0]
        elif rank <= 4:
            step = cells[rank - 1] - cells[rank - 2]
        else:
            step = cells[4]
        if m["alt"] and m["age"] < 18:
            step = step / 2
        total += step
    return total


def css_household(members: list[dict], age_limit: int) -> list[dict]:
    """Art. R.861-2: applicant, spouse, then dependants under `age_limit`, oldest first (the
    full-time child before an alternating one born the same day)."""
    adults = [m for m in members if m["role"] in ("DEM", "CJT")]
    adults.sort(key=lambda m: 0 if m["role"] == "DEM" else 1)
    deps = [m for m in members if m["role"] not in ("DEM", "CJT") and m["age"] < age_limit]
    deps.sort(key=lambda m: (m["by"], m["bm"], m["bd"], bool(m["alt"]), m["pos"]))
    return adults + deps


def housing_forfait(size: int, table: CssTable) -> float:
    """Housing aid counts as the yearly forfait of the household's size (1, 2, 3 and more)."""
    f1, f2, f3 = table.forfait_monthly
    return 12 * (f1 if size == 1 else f2 if size == 2 else f3)


def one_household(h: dict, members: list[dict], ref: date, table: CssTable) -> dict[str, int]:
    """Every rule's outcome for one CAF household, read from the texts (docs/LEGAL.md)."""
    foyer = css_household(members, table.dependant_age_limit)
    n = len(foyer)
    overseas = str(h["code_commune"] or "")[:3] in table.overseas_departements
    free = ceiling(foyer, table, "gratuite", overseas)
    contrib = ceiling(foyer, table, "participation", overseas)
    resources = h["ressources_12m"] + (housing_forfait(n, table) if h["p_AL"] else 0.0)

    has_css = h["css"] in ("GRATUITE", "PARTICIPATION")
    start, end = h["css_debut"], h["css_fin"]
    active = has_css and start is not None and end is not None and start <= ref <= end
    ended_recently = (has_css and end is not None and end < ref
                      and end >= ref - timedelta(days=LOOKBACK_DAYS))
    ending_soon = active and end <= ref + timedelta(days=RENEWAL_WINDOW_DAYS)

    below_free = resources < free  # « inférieures au plafond » (L.861-1 1°)
    within_contrib = resources <= contrib  # « comprises entre » the two ceilings (L.861-1 2°)
    rsa = h["p_RSA"] or h["p_RSAM"]
    found = h["a_cpam"]
    children = sum(1 for m in foyer if m["role"] == "ENF")
    # AAH presumption (since 1 July 2025): AAH (the generator draws no reduced rate), living
    # alone without anyone in the dossier, no work (no prime d'activité), no CSS
    aah_alone = (ref >= table.aah_since and h["p_AAH"] and len(members) == 1
                 and not h["p_PPA"])
    out = {
        "monoparent_sous_plafond_sans_css": found and h["situation_familiale"] == "ISOLE"
        and children >= 1 and below_free and not active,
        "rsa_sans_css": found and rsa and not active,
        "css_non_renouvelee": found and within_contrib
        and ((not active and ended_recently) or ending_soon),
        "sous_plafond_sans_css": found and within_contrib and not active,
        "aah_isole": found and aah_alone and not active,
        "a_verifier": (not found) and (within_contrib or rsa),
    }
    return {k: int(bool(v)) for k, v in out.items()} | {
        "ressources_css": resources, "n_css": n, "plafond_gratuite": free,
        "plafond_participation": contrib,
    }


def household_truth(
    hh: pl.DataFrame, persons: pl.DataFrame, ref: date, table: CssTable
) -> pl.DataFrame:
    """Rule flags per CAF household (0/1), from the clean household and its clean CPAM status.

    `hh` needs hid, code_commune, situation_familiale, ressources_12m, p_* flags, a_cpam, css,
    css_debut, css_fin; `persons` needs hid, role, age, alt, by, bm, bd, pos.
    """
    by_hid: dict[int, list[dict]] = {}
    for m in persons.select("hid", "role", "age", "alt", "by", "bm", "bd", "pos").iter_rows(
        named=True
    ):
        by_hid.setdefault(m["hid"], []).append(m)
    needed = ["hid", "code_commune", "situation_familiale", "ressources_12m", "a_cpam", "css",
              "css_debut", "css_fin", "p_RSA", "p_RSAM", "p_PPA", "p_AAH", "p_AL"]
    rows = [one_household(h, by_hid.get(h["hid"], []), ref, table)
            for h in hh.select(needed).iter_rows(named=True)]
    flags = pl.DataFrame(
        rows,
        schema={**{k: pl.Int8 for k in [*RULE_IDS, "a_verifier"]},
                "ressources_css": pl.Float64, "n_css": pl.Int16, "plafond_gratuite": pl.Float64,
                "plafond_participation": pl.Float64},
    )
    return pl.concat([hh.drop(flags.columns, strict=False), flags], how="horizontal")
