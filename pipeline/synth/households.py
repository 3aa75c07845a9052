"""Clean synthetic population: households (CAF dossiers and CPAM-only groups) and their persons.

Everything is drawn per household with numpy, then expanded to persons with np.repeat, so the cost
is a handful of array operations whatever the size. The output is the *clean* truth: noise is
added later, independently for each agency's copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from pipeline.synth import names, nir
from pipeline.synth.territory import Territory

# Household types.
SINGLE, AAH_SINGLE, LONE_PARENT, COUPLE = range(4)
ROLE_DEM, ROLE_CJT, ROLE_ENF, ROLE_APC = range(4)
ROLES = ["DEM", "CJT", "ENF", "APC"]


@dataclass
class Population:
    """Clean households and persons (polars frames) plus the reference date."""

    households: pl.DataFrame
    persons: pl.DataFrame
    reference_date: date


def _ymd(d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = d.astype("datetime64[Y]").astype(np.int64) + 1970
    m = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (d - d.astype("datetime64[M]")).astype(np.int64) + 1
    return y, m, day


def _age(ref: date, y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Full years at the reference date."""
    before = (m > ref.month) | ((m == ref.month) & (d > ref.day))
    return ref.year - y - before.astype(np.int64)


SIBLING_GAP = 0.9  # years between two births that are not twins
MIN_CHILD_AGE = 0.05  # years


def _space_siblings(age: np.ndarray, hid: np.ndarray, k: np.ndarray, nk: np.ndarray,
                    kid_max: np.ndarray) -> np.ndarray:
    """Children sorted oldest first -> at least SIBLING_GAP years apart, oldest under kid_max.

    With j the rank from the youngest, a_j - gap x j must not decrease: one cumulative max per
    household enforces every gap at once; the family is then shifted down if the eldest got
    too old (never below age 0: a young parent of many children gets a slightly older eldest).
    """
    j = nk - 1 - k
    df = pl.DataFrame({"hid": hid, "j": j, "a": age, "mx": kid_max, "pos": np.arange(len(age))})
    df = (
        df.sort(["hid", "j"])
        .with_columns(b=(pl.col("a") - SIBLING_GAP * pl.col("j")).cum_max().over("hid"))
        .with_columns(a=pl.col("b") + SIBLING_GAP * pl.col("j"))
        .with_columns(
            shift=(pl.col("a").max() - pl.col("mx").first()).clip(lower_bound=0).over("hid"),
            room=(pl.col("a").min() - MIN_CHILD_AGE).clip(lower_bound=0).over("hid"),
        )
        .with_columns(a=pl.col("a") - pl.min_horizontal("shift", "room"))
        .sort("pos")
    )
    return df["a"].to_numpy()


def _structure(rng: np.random.Generator, n_caf: int, n_cpam_only: int) -> dict[str, np.ndarray]:
    g = n_caf + n_cpam_only
    caf = np.arange(g) < n_caf
    htype = np.where(
        caf,
        rng.choice(4, size=g, p=[0.33, 0.05, 0.22, 0.40]),
        rng.choice([SINGLE, COUPLE], size=g, p=[0.55, 0.45]),
    )
    kids_lone = rng.choice(np.arange(1, 6), size=g, p=[0.45, 0.33, 0.15, 0.05, 0.02])
    kids_couple = rng.choice(np.arange(0, 6), size=g, p=[0.15, 0.25, 0.35, 0.17, 0.06, 0.02])
    nkids = np.select([htype == LONE_PARENT, htype == COUPLE], [kids_lone, kids_couple], 0)
    nkids = np.where(~caf & (rng.random(g) < 0.6), 0, nkids)
    couple = htype == COUPLE
    apc = caf & (htype != AAH_SINGLE) & (rng.random(g) < 0.03)
    return {"caf": caf, "htype": htype, "nkids": nkids, "couple": couple, "apc": apc}


def build(
    rng: np.random.Generator, households: int, ref: date, territory: Territory,
    registry: nir.OrderRegistry | None = None, population_hint: int | None = None,
) -> Population:
    """Draw `households` CAF dossiers plus ~15 % CPAM-only households (not allocataires).

    `registry` keeps NIRs unique across chunks; `population_hint` is the whole run's size in
    persons (birth places are spread more widely in big runs).
    """
    n_cpam_only = round(households * 0.15)
    h = _structure(rng, households, n_cpam_only)
    g = len(h["htype"])
    n = 1 + h["couple"] + h["nkids"] + h["apc"]

    # --- places ----------------------------------------------------------------------------
    tab = territory.table
    iris_idx = rng.choice(len(tab), size=g, p=territory.weights)
    iris = tab["code_iris"].gather(iris_idx)
    qpv = tab["qpv"].gather(iris_idx).to_numpy().astype(bool)
    if territory.iris_absent:
        # ~1 % of households live in an IRIS the reference table lacks (HORS_TERRITOIRE)
        out = rng.random(g) < 0.01
        absent = pl.Series(territory.iris_absent, dtype=pl.String).gather(
            rng.integers(0, len(territory.iris_absent), g))
        iris = pl.select(pl.when(pl.Series(out)).then(absent).otherwise(iris)).to_series()
        qpv = qpv & ~out
    commune = iris.str.slice(0, 5)

    # --- persons skeleton ------------------------------------------------------------------
    p_total = int(n.sum())
    hid = np.repeat(np.arange(g), n)
    start = np.concatenate([[0], np.cumsum(n)[:-1]])
    pos = np.arange(p_total) - start[hid]
    couple_p = h["couple"][hid]
    nk_p = h["nkids"][hid]
    role = np.select(
        [pos == 0, couple_p & (pos == 1), pos < 1 + couple_p + nk_p],
        [ROLE_DEM, ROLE_CJT, ROLE_ENF], ROLE_APC,
    )
    kid_idx = np.where(role == ROLE_ENF, pos - 1 - couple_p, -1)

    # --- sex and age -----------------------------------------------------------------------
    htype = h["htype"]
    dem_female_p = np.select(
        [htype == LONE_PARENT, htype == COUPLE, htype == AAH_SINGLE], [0.85, 0.55, 0.45], 0.5)
    dem_sex = np.where(rng.random(g) < dem_female_p, 2, 1)
    dem_age = np.select(
        [htype == SINGLE, htype == AAH_SINGLE, htype == LONE_PARENT],
        [18 + rng.beta(1.3, 2.6, g) * 67, rng.uniform(22, 62, g), rng.uniform(20, 56, g)],
        rng.uniform(21, 62, g),
    )
    cjt_age = np.maximum(dem_age + rng.normal(0, 3.5, g), 18.2)
    young_parent = np.where(h["couple"], np.minimum(dem_age, cjt_age), dem_age)
    sexe = np.where(role == ROLE_DEM, dem_sex[hid], 0)
    sexe = np.where(role == ROLE_CJT, 3 - dem_sex[hid], sexe)
    other = (role == ROLE_ENF) | (role == ROLE_APC)
    sexe = np.where(other, np.where(rng.random(p_total) < 0.51, 1, 2), sexe)

    age = np.where(role == ROLE_DEM, dem_age[hid], cjt_age[hid])
    kid_max = np.clip(young_parent - 17.0, 0.5, 19.9)[hid]
    # no child born on the extraction day itself: youngest ~18 days old
    age = np.where(role == ROLE_ENF, MIN_CHILD_AGE + rng.random(p_total) * kid_max, age)
    age = np.where(role == ROLE_APC, rng.uniform(18, 85, p_total), age)
    # children oldest first inside each household (the R.861-3 rank order)
    kids = np.flatnonzero(role == ROLE_ENF)
    order = np.lexsort((-age[kids], hid[kids]))
    age[kids] = _space_siblings(age[kids][order], hid[kids], kid_idx[kids], nk_p[kids],
                                kid_max[kids])
    # twins: the second child shares the first one's birth date
    twin_h = (h["nkids"] >= 2) & (rng.random(g) < 0.03)
    twin2 = (kid_idx == 1) & twin_h[hid]
    age = np.where(twin2, np.roll(age, 1), age)
    twin_rank = np.where(twin2, 2, 1)
    is_twin = twin2 | ((kid_idx == 0) & twin_h[hid])

    ref64 = np.datetime64(ref, "D")
    birth = ref64 - np.round(age * 365.2425).astype("timedelta64[D]")
    by, bm, bd = _ymd(birth)
    age_full = _age(ref, by, bm, bd)

    # --- origin and NIR --------------------------------------------------------------------
    adult = role != ROLE_ENF
    dem_abroad = rng.random(g) < np.where(qpv, 0.18, 0.08)
    abroad = np.where(role == ROLE_DEM, dem_abroad[hid], rng.random(p_total) < 0.08)
    abroad = np.where(role == ROLE_ENF,
                      rng.random(p_total) < np.where(dem_abroad[hid], 0.25, 0.01), abroad)
    provisional = abroad & (rng.random(p_total) < np.where(adult, 0.25, 0.15))
    # twins share their origin and birth place
    abroad = np.where(twin2, np.roll(abroad, 1), abroad)
    provisional = np.where(twin2, np.roll(provisional, 1), provisional)
    population = int(population_hint or p_total)
    place = names.birthplaces(rng, abroad, population)
    place = place.scatter(np.flatnonzero(twin2), place.gather(np.flatnonzero(twin2) - 1))
    # NIRs drawn in one go so that all are distinct: the persons'; the absent ex-partners' (some
    # children in alternating residence are attached to them at the CPAM); and, for 30 % of the
    # provisional numbers, the certified NIR the CPAM already holds while the CAF still has the
    # provisional one.
    ex_sex = 3 - dem_sex
    ex_by = by[start] + rng.integers(-4, 5, g)
    ex_place = names.birthplaces(rng, np.zeros(g, dtype=bool), population)
    cert = np.flatnonzero(provisional & (rng.random(p_total) < 0.3))
    nc = len(cert)
    all_nir = nir.build(
        np.concatenate([sexe, ex_sex, sexe[cert]]), np.concatenate([by, ex_by, by[cert]]),
        np.concatenate([bm, rng.integers(1, 13, g), bm[cert]]),
        pl.concat([place, ex_place, place.gather(cert)]),
        np.concatenate([provisional, np.zeros(g + nc, dtype=bool)]),
        registry,
    )
    nir_s, ex_nir = all_nir.head(p_total), all_nir.slice(p_total, g)
    nir_cpam = nir_s.clone().scatter(cert, all_nir.tail(nc)) if nc else nir_s

    # --- names -----------------------------------------------------------------------------
    own_name = names.surnames(rng, abroad)
    ex_name = names.surnames(rng, np.zeros(g, dtype=bool))
    u = rng.random(g)
    lone_mother = (htype == LONE_PARENT) & (dem_sex == 2)
    lm_ex = lone_mother & (rng.random(g) < 0.7)
    married = h["couple"] & (rng.random(g) < 0.55)
    divorced = lm_ex & (rng.random(g) < 0.4)
    hn = pl.DataFrame({
        "dem": own_name.gather(start),
        "cjt": own_name.gather(np.minimum(start + 1, p_total - 1)),
        "ex": ex_name, "man_dem": dem_sex == 1, "couple": h["couple"], "u": u, "lm_ex": lm_ex,
        "married": married, "divorced": divorced,
    }).with_columns(
        father=pl.when(pl.col("man_dem")).then(pl.col("dem")).otherwise(pl.col("cjt")),
        mother=pl.when(pl.col("man_dem")).then(pl.col("cjt")).otherwise(pl.col("dem")),
    ).with_columns(
        fam=pl.when(pl.col("couple") & (pl.col("u") < 0.85)).then(pl.col("father"))
        .when(pl.col("couple") & (pl.col("u") < 0.95))
        .then(pl.concat_str([pl.col("father"), pl.col("mother")], separator=" "))
        .when(pl.col("couple")).then(pl.col("mother"))
        .when(pl.col("lm_ex")).then(pl.col("ex"))
        .otherwise(pl.col("dem"))
    )
    pn = pl.DataFrame({"own": own_name, "role": role, "sexe": sexe,
                       "kin": rng.random(p_total) < 0.5}).with_columns(
        hn.gather(hid).select("dem", "ex", "father", "fam", "married", "divorced")
    )
    pn = pn.with_columns(
        nom_naissance=pl.when(pl.col("role") == ROLE_ENF).then(pl.col("fam"))
        .when((pl.col("role") == ROLE_APC) & pl.col("kin")).then(pl.col("dem"))
        .otherwise(pl.col("own")),
    ).with_columns(
        nom_usage=pl.when(pl.col("married") & (pl.col("sexe") == 2)
                          & pl.col("role").is_in([ROLE_DEM, ROLE_CJT]))
        .then(pl.col("father"))
        .when(pl.col("divorced") & (pl.col("role") == ROLE_DEM)).then(pl.col("ex"))
    ).with_columns(
        nom_usage=pl.when(pl.col("nom_usage") != pl.col("nom_naissance"))
        .then(pl.col("nom_usage"))
    )
    prenoms = names.given_names(rng, sexe, by, abroad)

    # --- alternating residence (minors of lone parents), attachment at the CPAM --------------
    alt_h = (htype == LONE_PARENT) & (rng.random(g) < 0.25)
    alt = (role == ROLE_ENF) & alt_h[hid] & (age_full < 18)
    # twins share it; ranks already in order
    attach_mother = rng.random(g) < 0.55
    carrier_pos = np.where(h["couple"] & (attach_mother != (dem_sex == 2)), 1, 0)
    to_ex = alt & (rng.random(p_total) < 0.4)
    od_child = pl.select(
        pl.when(pl.Series(to_ex)).then(ex_nir.gather(hid))
        .otherwise(nir_cpam.gather((start + carrier_pos)[hid]))
    ).to_series()

    hh = pl.DataFrame({
        "hid": np.arange(g, dtype=np.int64),
        "caf": h["caf"],
        "htype": htype.astype(np.int8),
        "couple": h["couple"],
        "nkids": h["nkids"].astype(np.int8),
        "n": n.astype(np.int16),
        "code_iris": iris,
        "code_commune": commune,
        "qpv": qpv,
    })
    pp = pl.DataFrame({
        "pid": np.arange(p_total, dtype=np.int64),
        "hid": hid.astype(np.int64),
        "pos": pos.astype(np.int16),
        "role": pl.Series(ROLES, dtype=pl.String).gather(role),
        "sexe": sexe.astype(np.int8),
        "by": by.astype(np.int16), "bm": bm.astype(np.int8), "bd": bd.astype(np.int8),
        "age": age_full.astype(np.int16),
        "abroad": abroad,
        "provisional": provisional,
        "nir": nir_s,
        "nom_naissance": pn["nom_naissance"],
        "nom_usage": pn["nom_usage"],
        "prenoms": prenoms,
        "alt": alt,
        "twin_rank": twin_rank.astype(np.int8),
        "twin": is_twin,
        "nir_cpam": nir_cpam,
        "nir_od_child": od_child,
    })
    return Population(households=hh, persons=pp, reference_date=ref)
