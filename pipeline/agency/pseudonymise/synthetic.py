"""Ingested-like synthetic records (fake people only) for the tests and the benchmark.

Not the project's generator (pipeline/synth): a fast, vectorised stand-in with realistic name
frequencies (Zipf-weighted faker fr_FR lists) so that the frequency-leakage figures mean
something, and with the exact columns of docs/CONTRACTS.md "Ingested".
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

ROLES_CAF = np.array(["DEM", "CJT", "ENF", "ENF", "APC"])


def _names(rng: np.random.Generator, pool: list[str], n: int, zipf_shift: float) -> np.ndarray:
    pool_arr = pl.Series(pool).str.normalize("NFKD").str.replace_all(r"[^\x00-\x7f]", "") \
        .str.to_uppercase().str.replace_all(r"['-]", " ").to_numpy()
    w = 1.0 / (np.arange(len(pool_arr)) + zipf_shift)
    return rng.choice(pool_arr, size=n, p=w / w.sum())


def _nir(rng: np.random.Generator, sexe: np.ndarray, year: np.ndarray, month: np.ndarray,
         unique: np.ndarray) -> pl.Series:
    dep = rng.integers(1, 96, size=len(sexe))
    return pl.DataFrame({"s": sexe, "y": year % 100, "m": month, "d": dep, "u": unique}).select(
        pl.format("{}{}{}{}{}", pl.col("s"), pl.col("y").cast(pl.String).str.zfill(2),
                  pl.col("m").cast(pl.String).str.zfill(2),
                  pl.col("d").cast(pl.String).str.zfill(2),
                  pl.col("u").cast(pl.String).str.zfill(6))).to_series()


def ingested(agency: str, n: int, seed: int = 1, reference: dt.date = dt.date(2026, 3, 31),
             ) -> pl.DataFrame:
    """`n` synthetic ingested rows for `agency` ('caf' or 'cpam'), deterministic in `seed`."""
    from faker.providers.person.fr_FR import Provider

    rng = np.random.default_rng(seed)
    firsts = list(Provider.first_names_male) + list(Provider.first_names_female)
    rng_pool = np.random.default_rng(7)
    firsts = [firsts[i] for i in rng_pool.permutation(len(firsts))]
    line = np.arange(2, n + 2)
    sexe = rng.integers(1, 3, size=n).astype(np.int8)
    year = rng.integers(1930, 2025, size=n)
    month = rng.integers(1, 13, size=n)
    day = rng.integers(1, 29, size=n)
    dob = pl.select(pl.date(pl.Series(year), pl.Series(month), pl.Series(day))).to_series()
    nom = _names(rng, list(Provider.last_names), n, 5.0)
    p1 = _names(rng, firsts, n, 3.0)
    p2 = _names(rng, firsts, n, 3.0)
    has_p2 = rng.random(n) < 0.6
    nir = _nir(rng, sexe, year, month, rng.permutation(n) % 1_000_000)
    nir = nir.set(pl.Series(rng.random(n) < 0.15), None)  # missing NIRs
    base = pl.DataFrame({
        "line": line,
        "sexe": sexe,
        "date_naissance": dob,
        "naiss_annee": year.astype(np.int16),
        "naiss_mois": month.astype(np.int16),
        "naiss_jour": day.astype(np.int16),
        "nir": nir,
        "prenom1": p1,
        "prenoms": np.where(has_p2, np.char.add(np.char.add(p1.astype(str), " "),
                                                p2.astype(str)), p1),
        "adresse": np.char.add((rng.integers(1, 200, size=n)).astype(str), " RUE DES LILAS"),
        "code_postal": np.full(n, "61100"),
        "code_commune": rng.choice(np.array(["61169", "61170", "61001", "14118"]), size=n),
    }).with_columns(
        nir_statut=pl.when(pl.col("nir").is_null()).then(pl.lit("absent"))
        .otherwise(pl.lit("certifie")),
        date_extraction=pl.lit(reference),
    )
    if agency == "caf":
        role = ROLES_CAF[rng.integers(0, len(ROLES_CAF), size=n)]
        role[::3] = "DEM"
        married = (rng.random(n) < 0.3) & (sexe == 2)
        usage = _names(rng, list(Provider.last_names), n, 5.0)
        return base.with_columns(
            matricule=pl.Series((np.arange(n) // 3 + 1_000_000).astype(str)),
            role=pl.Series(role),
            nom_naissance=pl.Series(nom),
            nom_usage=pl.Series(usage.astype(str)).set(pl.Series(~married), None),
            telephone=pl.Series(np.char.add("06", rng.integers(10**7, 10**8, size=n).astype(str))),
            code_iris=pl.col("code_commune") + pl.Series(
                rng.choice(np.array(["0101", "0102", "0201", "9999"]), size=n)),
            situation_familiale=pl.Series(rng.choice(np.array(["ISOLE", "COUPLE"]), size=n)),
            residence_alternee=pl.Series(rng.random(n) < 0.05),
            ressources_12m=pl.Series(rng.uniform(0, 40_000, size=n).round(2)),
            prestations=pl.Series([["RSA", "AL"], ["AF"], [], ["AAH"]])
            .gather(rng.integers(0, 4, size=n)),
        )
    qualite = np.where(year > 2008, "ENFANT", "ASSURE")
    css = rng.choice(np.array(["NON", "GRATUITE", "PARTICIPATION"]), size=n, p=[0.8, 0.15, 0.05])
    debut = pl.select(pl.date(2025, pl.Series(rng.integers(1, 13, size=n)), 1)).to_series()
    return base.with_columns(
        nir_ouvrant_droit=pl.when(pl.Series(qualite) == "ENFANT")
        .then(pl.col("nir").shift(1)).otherwise(pl.col("nir")),
        rang_gemellaire=pl.lit(1, dtype=pl.Int8),
        qualite=pl.Series(qualite),
        nom=pl.Series(nom),
        css=pl.Series(css),
        css_debut=pl.when(pl.Series(css) != "NON").then(debut),
        css_fin=pl.when(pl.Series(css) != "NON").then(debut.dt.offset_by("1y")),
        medecin_traitant=pl.Series(rng.random(n) < 0.8),
    )
