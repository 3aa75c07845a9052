"""The two agencies' views of the clean population (before noise), one row per extract line.

CAF: every person of every dossier; children mostly without NIR. CPAM: the persons of households
covered by the régime général; adults are ASSURE with their own NIR, minors ENFANT rows attached
to a parent's NIR (or, for some children in alternating residence, to the absent other parent's).
A few spouses are covered by another scheme on their own (2 %), and a few CPAM addresses are out
of date (5 % of households: another street number).
"""

from __future__ import annotations

import numpy as np
import polars as pl

CAF_HOUSEHOLD = ["hid", "matricule", "telephone", "adresse", "code_postal", "code_commune",
                 "code_iris", "situation_familiale", "ressources_12m", "prestations"]
CPAM_HOUSEHOLD = ["hid", "_hkey", "caf", "adresse", "code_postal", "code_commune", "css",
                  "css_debut", "css_fin", "p_RSA", "p_RSAM", "p_PPA"]


def caf_frame(rng: np.random.Generator, pp: pl.DataFrame, hh: pl.DataFrame) -> pl.DataFrame:
    """Clean CAF rows, sorted in file order (matricule, then DEM, CJT, children, APC)."""
    n = pp.height
    child = (pp["role"] == "ENF").to_numpy()
    age = pp["age"].to_numpy()
    keep_nir = ~child | (rng.random(n) < np.where(age >= 16, 0.3, 0.08))
    df = (
        pp.with_columns(_keep=pl.Series(keep_nir))
        .join(hh.filter(pl.col("caf")).select(CAF_HOUSEHOLD), on="hid", how="inner")
        .with_columns(nir=pl.when(pl.col("_keep")).then(pl.col("nir")))
        .drop("_keep")
    )
    df = df.with_columns(
        residence_alternee=pl.when(pl.col("role") == "ENF")
        .then(pl.when(pl.col("alt")).then(pl.lit("O")).otherwise(pl.lit("N"))),
    )
    return df.sort(["matricule", "pos"])


def cpam_frame(rng: np.random.Generator, pp: pl.DataFrame, hh: pl.DataFrame) -> pl.DataFrame:
    """Clean CPAM rows, in file order (households in random order, ASSURE first)."""
    n = pp.height
    age = pp["age"].to_numpy()
    minor = (pp["role"] == "ENF").to_numpy() & (age < 18)
    own_nir_child = rng.random(n) < np.where(age >= 12, 0.3, 0.08)
    usage_at_cpam = rng.random(n) < 0.55
    mt = rng.random(n) < np.where(minor, 0.6, 0.85)
    hkey = rng.permutation(hh.height)
    other_scheme = (pp["role"] == "CJT").to_numpy() & (rng.random(n) < 0.02)
    moved = rng.random(hh.height) < 0.05
    new_number = pl.Series(rng.integers(1, 121, hh.height)).cast(pl.String)
    df = (
        pp.with_columns(
            _minor=pl.Series(minor), _own=pl.Series(own_nir_child),
            _usage=pl.Series(usage_at_cpam), _mt=pl.Series(mt), _other=pl.Series(other_scheme),
        )
        .join(
            hh.with_columns(
                _hkey=pl.Series(hkey),
                adresse=pl.when(pl.Series(moved))
                .then(pl.concat_str([new_number, pl.col("adresse").str.replace(r"^\d+", "")]))
                .otherwise(pl.col("adresse")),
            ).filter(pl.col("a_cpam")).select(CPAM_HOUSEHOLD),
            on="hid", how="inner",
        )
        .filter(~(pl.col("_other") & pl.col("caf")))  # CAF spouses only: nobody vanishes
    )
    df = df.with_columns(
        qualite=pl.when(pl.col("_minor")).then(pl.lit("ENFANT")).otherwise(pl.lit("ASSURE")),
        nir_beneficiaire=pl.when(~pl.col("_minor") | pl.col("_own")).then(pl.col("nir_cpam")),
        nir_ouvrant_droit=pl.when(pl.col("_minor")).then(pl.col("nir_od_child"))
        .otherwise(pl.col("nir_cpam")),
        rang_gemellaire=pl.when(pl.col("_minor")).then(pl.col("twin_rank")).otherwise(1),
        nom=pl.when(pl.col("nom_usage").is_not_null() & pl.col("_usage"))
        .then(pl.col("nom_usage")).otherwise(pl.col("nom_naissance")),
        prenom=pl.col("prenoms").str.replace(r" .*$", "").str.to_uppercase(),
        medecin_traitant=pl.when(pl.col("_mt")).then(pl.lit("O")).otherwise(pl.lit("N")),
    )
    return df.sort(["_hkey", "_minor", "pos"]).drop("_minor", "_own", "_usage", "_mt", "_hkey",
                                                           "_other")
