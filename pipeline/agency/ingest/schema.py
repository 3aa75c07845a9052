"""The "Ingested" contract of docs/CONTRACTS.md: output columns, their types, and value sets.

A layout file may rename source columns but not change what a canonical column means: the loader
checks each declared type against `EXPECTED_TYPES`, and enum values against `CANONICAL_VALUES`.
"""

from __future__ import annotations

import polars as pl

from pipeline.shared.providers import is_benefits

COMMON: dict[str, pl.DataType] = {
    "line": pl.Int64(),
    "sexe": pl.Int8(),
    "date_naissance": pl.Date(),
    "naiss_annee": pl.Int16(),
    "naiss_mois": pl.Int16(),
    "naiss_jour": pl.Int16(),
    "nir": pl.String(),
    "nir_statut": pl.String(),
    "prenom1": pl.String(),
    "prenoms": pl.String(),
    "adresse": pl.String(),
    "code_postal": pl.String(),
    "code_commune": pl.String(),
    "date_extraction": pl.Date(),
}

CAF_ONLY: dict[str, pl.DataType] = {
    "matricule": pl.String(),
    "role": pl.String(),
    "nom_naissance": pl.String(),
    "nom_usage": pl.String(),
    "telephone": pl.String(),
    "code_iris": pl.String(),
    "situation_familiale": pl.String(),
    "residence_alternee": pl.Boolean(),
    "ressources_12m": pl.Float64(),
    "prestations": pl.List(pl.String()),
    # optional in the raw extract (null when absent); detection uses them when present
    "aah_taux_plein": pl.Boolean(),
    "aide_logement_mensuelle": pl.Float64(),
    "statut_occupation": pl.String(),
}

CPAM_ONLY: dict[str, pl.DataType] = {
    "nir_ouvrant_droit": pl.String(),
    "rang_gemellaire": pl.Int8(),
    "qualite": pl.String(),
    "nom": pl.String(),
    "css": pl.String(),
    "css_debut": pl.Date(),
    "css_fin": pl.Date(),
    "medecin_traitant": pl.Boolean(),
}


def output_schema(agency: str) -> dict[str, pl.DataType]:
    """Exact column order and types of ingested.parquet for `agency`."""
    return {**COMMON, **(CAF_ONLY if is_benefits(agency) else CPAM_ONLY)}


# Layout column (canonical name) -> reader type. Derived outputs (nir_statut, naiss_*, prenom1)
# come from the column that feeds them.
EXPECTED_TYPES: dict[str, dict[str, str]] = {
    "caf": {
        "matricule": "code", "role": "enum", "nir": "nir", "nom_naissance": "name",
        "nom_usage": "name", "prenoms": "given_names", "date_naissance": "date", "sexe": "enum",
        "telephone": "phone", "adresse": "text", "code_postal": "code", "code_commune": "code",
        "code_iris": "code", "situation_familiale": "enum", "residence_alternee": "bool",
        "ressources_12m": "decimal", "prestations": "list", "date_extraction": "date",
        "aah_taux_plein": "bool", "aide_logement_mensuelle": "decimal",
        "statut_occupation": "enum",
    },
    "cpam": {
        "nir": "nir", "nir_ouvrant_droit": "nir", "rang_gemellaire": "int", "qualite": "enum",
        "nom": "name", "prenoms": "given_names", "date_naissance": "date", "sexe": "enum",
        "adresse": "text", "code_postal": "code", "code_commune": "code", "css": "enum",
        "css_debut": "date", "css_fin": "date", "medecin_traitant": "bool",
        "date_extraction": "date",
    },
}

CANONICAL_VALUES: dict[str, frozenset[str]] = {
    "role": frozenset({"DEM", "CJT", "ENF", "APC"}),
    "qualite": frozenset({"ASSURE", "ENFANT"}),
    "css": frozenset({"NON", "GRATUITE", "PARTICIPATION"}),
    "situation_familiale": frozenset({"ISOLE", "COUPLE"}),
    "sexe": frozenset({"1", "2"}),
    "prestations": frozenset({"RSA", "RSAM", "PPA", "ASF", "AAH", "AL", "AF", "CF", "PAJE"}),
    "statut_occupation": frozenset({"LOCATAIRE", "PROPRIETAIRE", "HEBERGE_GRATUIT", "AUTRE"}),
}

# Coded columns whose unreadable values are kept as an explicit "unknown" code (with a warning)
# rather than nulled: a CSS status the agency sent but ingest cannot read must never look like
# "no CSS" downstream.
UNKNOWN_CODES: dict[str, str] = {"css": "INCONNU"}
