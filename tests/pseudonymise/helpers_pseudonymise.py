"""Shared builders for the pseudonymise tests (synthetic people only)."""

from __future__ import annotations

import datetime as dt

import polars as pl

KEY = bytes(range(32))  # stand-in linkage key (never a real one)
OTHER_KEY = bytes(range(1, 33))
REF = dt.date(2026, 3, 31)


def person(**over: object) -> dict:
    """One CPAM-like ingested row; override any column."""
    row = {
        "line": 2, "sexe": 2, "date_naissance": dt.date(1985, 5, 17), "naiss_annee": 1985,
        "naiss_mois": 5, "naiss_jour": 17, "nir": "2850561169001", "nir_statut": "certifie",
        "prenom1": "CAMILLE", "prenoms": "CAMILLE MARIE", "adresse": "1 RUE DES LILAS",
        "code_postal": "61100", "code_commune": "61169", "date_extraction": REF,
        "nir_ouvrant_droit": "2850561169001", "rang_gemellaire": 1, "qualite": "ASSURE",
        "nom": "DUPONT", "css": "NON", "css_debut": None, "css_fin": None,
        "medecin_traitant": True,
    }
    row.update(over)
    return row


SCHEMA = {
    "line": pl.Int64, "sexe": pl.Int8, "date_naissance": pl.Date, "naiss_annee": pl.Int16,
    "naiss_mois": pl.Int16, "naiss_jour": pl.Int16, "nir": pl.String, "nir_statut": pl.String,
    "prenom1": pl.String, "prenoms": pl.String, "adresse": pl.String, "code_postal": pl.String,
    "code_commune": pl.String, "date_extraction": pl.Date, "nir_ouvrant_droit": pl.String,
    "rang_gemellaire": pl.Int8, "qualite": pl.String, "nom": pl.String, "css": pl.String,
    "css_debut": pl.Date, "css_fin": pl.Date, "medecin_traitant": pl.Boolean,
}

CAF_SCHEMA = {
    **{k: v for k, v in SCHEMA.items() if k not in (
        "nir_ouvrant_droit", "rang_gemellaire", "qualite", "nom", "css", "css_debut", "css_fin",
        "medecin_traitant")},
    "matricule": pl.String, "role": pl.String, "nom_naissance": pl.String,
    "nom_usage": pl.String, "telephone": pl.String, "code_iris": pl.String,
    "situation_familiale": pl.String, "residence_alternee": pl.Boolean,
    "ressources_12m": pl.Float64, "prestations": pl.List(pl.String),
}


def caf_person(**over: object) -> dict:
    base = {k: v for k, v in person().items() if k in CAF_SCHEMA}
    base.update({
        "matricule": "1234567", "role": "DEM", "nom_naissance": "DUPONT", "nom_usage": None,
        "telephone": "0601020304", "code_iris": "611690101", "situation_familiale": "ISOLE",
        "residence_alternee": False, "ressources_12m": 9000.0, "prestations": ["RSA"],
    })
    base.update(over)
    return base


def cpam_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SCHEMA)


def caf_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=CAF_SCHEMA)
