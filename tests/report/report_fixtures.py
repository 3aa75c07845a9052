"""A complete, hand-made `facts` dict (synthetic run) shared by the report tests."""

from __future__ import annotations

import copy
from typing import Any

_HEX = "0123456789abcdef"


def fake_hex(seed: int, n: int = 64) -> str:
    """Deterministic hex string (not a real hash; only its shape matters)."""
    return "".join(_HEX[(seed * 7 + i * 13 + (i * i) % 11) % 16] for i in range(n))


FACTS: dict[str, Any] = {
    "run": {
        "run_id": "3f9a1c2b7d4e5f60",
        "created_at": "2026-11-22T20:00:00Z",
        "reference_date": "2025-10-01",
        "territory": "Flers (Orne) — démonstration synthétique",
        "tool_version": "0.1.0",
    },
    "gate": {
        "convention_id": "demo-flers-2025",
        "convention": {
            "id": "demo-flers-2025",
            "title": "Convention de démonstration CCAS de Flers, CAF de l'Orne, CPAM de l'Orne",
            "demo": True,
            "valid_from": "2025-01-01",
            "valid_until": "2026-12-31",
            "retention_days": 90,
            "legal_basis": ["art. L.114-8 II CRPA", "décret 2023-361"],
            "purpose": "Repérer les foyers éligibles à la CSS qui n'en bénéficient pas.",
        },
        "parties": {
            "caf": {"name": "CAF de l'Orne", "roles": ["fournisseur"], "key_id": "ed25519:caf01"},
            "cpam": {"name": "CPAM de l'Orne", "roles": ["fournisseur"],
                     "key_id": "ed25519:cpam01"},
            "ccas": {"name": "CCAS de Flers", "roles": ["operateur"], "key_id": "ed25519:ccas01"},
        },
        "signatures": {"caf": "valide", "cpam": "valide", "ccas": "valide"},
        "manifests": {
            "caf": {"agency": "caf", "file": "caf.pseudo.parquet", "sha256": fake_hex(1),
                    "rows": 5123, "key_fingerprint": fake_hex(9, 32), "schema_version": "1",
                    "created_at": "2026-11-22T19:40:00Z", "tool_version": "0.1.0",
                    "signature": "valide"},
            "cpam": {"agency": "cpam", "file": "cpam.pseudo.parquet", "sha256": fake_hex(2),
                     "rows": 4876, "key_fingerprint": fake_hex(9, 32), "schema_version": "1",
                     "created_at": "2026-11-22T19:41:00Z", "tool_version": "0.1.0",
                     "signature": "valide"},
        },
        "key_fingerprint": fake_hex(9, 32),
        "rules": ["monoparent_sous_plafond_sans_css", "rsa_sans_css", "css_non_renouvelee"],
        "columns": {"caf": ["handle", "foyer"], "cpam": ["handle", "foyer"]},
        "verdict": "accepte",
    },
    "validations": [
        {"stage": "caf_export", "success": True, "critical_failures": [], "warnings": [],
         "evaluated": 36, "passed": 36, "skipped": 0,
         "results_path": "out/central/validation/caf_export.json"},
        {"stage": "cpam_export", "success": True, "critical_failures": [],
         "warnings": ["cpam_export · fin de CSS postérieure au début : 3 valeur(s) non "
                      "conforme(s) sur 4 876 (0,06 %)"],
         "evaluated": 30, "passed": 29, "skipped": 0,
         "results_path": "out/central/validation/cpam_export.json"},
        {"stage": "links", "success": True, "critical_failures": [], "warnings": [],
         "evaluated": 14, "passed": 14, "skipped": 0,
         "results_path": "out/central/validation/links.json"},
        {"stage": "targets", "success": True, "critical_failures": [], "warnings": [],
         "evaluated": 22, "passed": 22, "skipped": 0,
         "results_path": "out/central/validation/targets.json"},
    ],
    "linkage": {
        "caf_rows": 5123,
        "cpam_rows": 4876,
        "funnel": [
            {"pass": "nir", "links": 3702},
            {"pass": "enfant", "links": 611},
            {"pass": "nom_dob", "links": 188},
            {"pass": "probabiliste", "links": 97},
        ],
        "histogram": {
            "bins": [-20, -16, -12, -8, -4, 0, 4, 8, 12, 16, 20, 24],
            "counts": [5200, 12800, 9100, 2400, 380, 61, 24, 18, 40, 77, 55],
        },
        "threshold_review": 2.0,
        "threshold_link": 10.0,
        "clerical_size": 42,
        "prior": 0.0004,
        "m_u": [
            {"comparison": "nom", "level": "exact", "m": 0.92, "u": 0.0021},
            {"comparison": "prenom", "level": "phonétique", "m": 0.05, "u": 0.004},
            {"comparison": "date_naissance", "level": "exacte", "m": 0.95, "u": 0.00012},
        ],
    },
    "detection": {
        "targets": 57,
        "a_verifier": 23,
        "excluded_opposition": 2,
        "by_rule": {"monoparent_sous_plafond_sans_css": 29, "rsa_sans_css": 18,
                    "css_non_renouvelee": 20},
        "cells": [
            {"tableau": "non_recours", "regle": "monoparent_sous_plafond_sans_css",
             "quartier": "QN06101M", "label": "21"},
            {"tableau": "non_recours", "regle": "monoparent_sous_plafond_sans_css",
             "quartier": "HQ61169A", "label": "< 11"},
            {"tableau": "non_recours", "regle": "monoparent_sous_plafond_sans_css",
             "quartier": "Total", "label": "29"},
            {"tableau": "non_recours", "regle": "rsa_sans_css", "quartier": "QN06101M",
             "label": "12"},
            {"tableau": "non_recours", "regle": "rsa_sans_css", "quartier": "HQ61169A",
             "label": "s"},
            {"tableau": "non_recours", "regle": "rsa_sans_css", "quartier": "Total",
             "label": "18"},
            {"tableau": "non_recours", "regle": "Total", "quartier": "QN06101M", "label": "33"},
            {"tableau": "non_recours", "regle": "Total", "quartier": "HQ61169A", "label": "14"},
            {"tableau": "non_recours", "regle": "Total", "quartier": "Total", "label": "47"},
            {"tableau": "a_verifier", "regle": "a_verifier", "quartier": "QN06101M",
             "label": "15"},
            {"tableau": "a_verifier", "regle": "a_verifier", "quartier": "HQ61169A",
             "label": "< 11"},
        ],
    },
    "leakage": [
        {"agency": "caf", "scan_ok": True, "findings": 0, "frequency_leakage": 0.012,
         "frequency_threshold": 0.05, "details": {"tok_prenom_an": 0.012, "tok_nom_an": 0.004}},
        {"agency": "cpam", "scan_ok": True, "findings": 0, "frequency_leakage": 0.009,
         "frequency_threshold": 0.05},
    ],
    "audit": {"ok": True, "entries": 12, "head": fake_hex(5), "broken_line": None,
              "reason": None},
    "parameters": {
        "reference_date": "2025-10-01",
        "period_from": "2025-04-01",
        "period_to": "2026-03-31",
        "confirmed": True,
        "source": "art. L.861-1 et R.861-3 du code de la sécurité sociale",
        "gratuite": {"1": 10339, "2": 15508, "3": 18609, "4": 21711, "extra": 4135},
        "participation": {"1": 13957, "2": 20936, "3": 25123, "4": 29311, "extra": 5583},
        "overseas_uplift": 0.113,
        "housing_forfait_monthly": {"1": 77.58, "2": 155.16, "3": 192.02},
    },
    "versions": {"nonrecours": "0.1.0", "polars": "2.1.0", "duckdb": "2.0.0",
                 "great-expectations": "1.24.1", "python": "3.11.2"},
    "warnings": [],
}


def complete_facts() -> dict[str, Any]:
    return copy.deepcopy(FACTS)
