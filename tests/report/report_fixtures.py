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


def _pair(ref: str, pass_: str, levels: list[tuple[str, str, float]]) -> dict[str, Any]:
    prior = -12.35
    steps = [{"comparison": c, "level": lv, "weight": w, "tf_weight": None}
             for c, lv, w in levels]
    return {"ref": ref, "pass": pass_, "prior": prior, "steps": steps,
            "match_weight": prior + sum(w for _, _, w in levels)}


CHECKS = [
    {"key": "colonnes_autorisees", "type": "expect_table_columns_to_match_set",
     "column": None, "severity": "critical", "label": "seules les colonnes autorisées",
     "expected": "au plus ces 28 colonnes autorisées", "evaluated": True, "success": True,
     "message": "conforme"},
    {"key": "css_dates_coherentes", "type": "expect_column_pair_values_a_to_be_greater_than_b",
     "column": None, "severity": "warning", "label": "fin de CSS postérieure au début",
     "expected": "css_fin ≥ css_debut (au moins 99,00 % des valeurs)", "evaluated": True,
     "success": False, "element_count": 4876, "missing_count": 2000, "unexpected_count": 3,
     "unexpected_percent": 0.1043,
     "message": "cpam_export · fin de CSS postérieure au début : 3 valeur(s) non conforme(s) "
                "sur 2 876 (0,10 %), 2 000 vide(s) non comptée(s)"},
    {"key": "non_vide", "type": "expect_table_row_count_to_be_between", "column": None,
     "severity": "critical", "label": "au moins une personne exportée",
     "expected": "entre 4 876 et 4 876 lignes", "evaluated": True, "success": True,
     "observed_value": 4876, "message": "conforme"},
]

DRILLDOWN: dict[str, Any] = {
    "validations_checks": {"cpam_export": CHECKS},
    "ingestion": {
        "caf": {"lues": 5132, "acceptees": 5123, "rejetees": 9, "avertissements": 48,
                "motifs": [{"action": "ligne rejetée", "colonne": "role",
                            "motif": "valeur non reconnue (attendu : DEM, CJT, ENF, APC)",
                            "nombre": 2},
                           {"action": "valeur ignorée", "colonne": "nir",
                            "motif": "clé de contrôle du NIR incorrecte", "nombre": 20}]},
        "cpam": {"lues": 4880, "acceptees": 4876, "rejetees": 4, "avertissements": 3,
                 "motifs": [{"action": "ligne rejetée", "colonne": None,
                             "motif": "nombre de champs différent de l'en-tête", "nombre": 4}]},
    },
    "quartiers": {"QN06101M": "Saint-Michel", "HQ61169A": "Centre-ville"},
    "rules": [
        {"id": "monoparent_sous_plafond_sans_css", "titre": "Famille monoparentale sous le "
         "plafond de la CSS gratuite, sans CSS", "source": "art. L.861-1 CSS", "liste": "cible",
         "agence": "caf", "priorite": 1,
         "limites": ["ressources CAF sur 12 mois, pas celles retenues par la CPAM"]},
        {"id": "rsa_sans_css", "titre": "Allocataire du RSA sans CSS", "source": "art. L.861-2",
         "liste": "cible", "agence": "caf", "priorite": 1, "limites": []},
        {"id": "css_non_renouvelee", "titre": "CSS échue non renouvelée", "source": "R.861-16",
         "liste": "cible", "agence": "cpam", "priorite": 2, "limites": []},
    ],
    "reconciliation": {
        "rows": 80, "households": 80, "console_total": 80,
        "by_agency_list": [{"agency": "caf", "list": "a_verifier", "households": 23},
                           {"agency": "caf", "list": "cible", "households": 37},
                           {"agency": "cpam", "list": "cible", "households": 20}],
        "rule_rows": {"cible": 67, "a_verifier": 23}, "multi_rule": {"cible": 10},
    },
    "linkage": {
        "blocking_rules": [{"rule": "dob", "on": "l.tok_dob = r.tok_dob", "pairs": 39,
                            "new_pairs": 39},
                           {"rule": "nom_phon_annee", "on": "l.tok_nom_phon_a = r.tok_nom_phon_a",
                            "pairs": 82, "new_pairs": 41}],
        "blocking_candidates": 80,
        "em": {"iterations": 14, "converged": True, "in_block_match_share": 0.11,
               "in_block_expected_matches": 46.0, "u_sample_pairs": 1000000, "patterns": 42},
        "prior_weight": -12.35, "deterministic_links": 4501,
        "deterministic_recall_assumed": 0.9,
        "passes": [{"pass": "nir", "label": "NIR identique", "candidates": 3702,
                    "linked": 3702, "tie_break": 0, "ambiguous": 0}],
        "sample": [
            _pair("a6647f56fb33", "probabiliste", [("Nom", "nom identique", 11.86),
                                                  ("Prénom", "phonétique", 4.1),
                                                  ("Date de naissance", "identique", 12.2),
                                                  ("Sexe", "même sexe", 1.0)]),
            _pair("0b3c11d2e4f5", "nir", [("Nom", "différent", -5.54),
                                          ("Date de naissance", "identique", 12.2)]),
        ],
        "clerical": [
            _pair("77c1e0a9b2d3", "revue", [("Nom", "différent", -5.54),
                                            ("Prénom", "identique", 9.1),
                                            ("Date de naissance", "deux sur trois", 0.14),
                                            ("Commune", "même commune", 0.94)]),
        ],
        "by_pass": {"nir": {"bins": [20, 21, 22, 23], "counts": [100, 2000, 1602]},
                    "probabiliste": {"bins": [3, 4, 5, 6], "counts": [10, 40, 47]}},
    },
}


def complete_facts() -> dict[str, Any]:
    """FACTS plus the drill-down sections (per-check records, waterfalls, reconciliation)."""
    facts = copy.deepcopy(FACTS)
    extra = copy.deepcopy(DRILLDOWN)
    checks = extra.pop("validations_checks")
    for v in facts["validations"]:
        v["checks"] = checks.get(v["stage"], [])
        v["engine"] = "polars"
    facts["linkage"].update(extra.pop("linkage"))
    facts.update(extra)
    return facts
