"""Turn the stages' own stats files into the report's `facts` (pipeline/central/report/facts.py).

Each stage writes the figures it knows in its own vocabulary (link_stats.json, detect_stats.json,
<agency>.leakage.json, the gate result); this module is the one place that maps them onto the
report's schema, so the stages and the report can evolve independently.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from pipeline import __version__
from pipeline.central.report import drilldown
from pipeline.central.report.facts import collect_versions
from pipeline.central.report.render import aggregate_cells, fmt_pct
from pipeline.shared.linkage_model import load_config

FREQUENCY_LEAKAGE_THRESHOLD = 0.01  # issue target: under 1 % of names recovered
K_FILE = "k_anonymat.json"  # the linking operator's k-anonymity, when it does not detect


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def linkage_facts(stats: dict[str, Any], run_dir: Path | None = None) -> dict[str, Any]:
    funnel = stats.get("funnel", {})
    by_pass = funnel.get("links_by_pass", {})
    # The run's own name for its probabilistic links (older stats: the catalogue's).
    probabilistic = (funnel.get("probabilistic") or {}).get("pass") \
        or load_config().probabilistic_pass.name
    residue = (stats.get("residue") or {}).get("pass")  # the staged exchange's links
    order = [p.get("pass") for p in funnel.get("passes", [])] + [probabilistic, residue]
    steps = [{"pass": p, "links": int(by_pass.get(p, 0))} for p in dict.fromkeys(order) if p]
    hist = stats.get("match_weight_histogram", [])
    model = stats.get("model", {})
    m_u = [
        {
            "comparison": c.get("label") or c.get("comparison"),
            "level": lv.get("label"),
            "m": lv.get("m"),
            "u": lv.get("u"),
        }
        for c in model.get("comparisons", [])
        for lv in c.get("levels", [])
    ]
    thresholds = stats.get("thresholds", {})
    return {
        "caf_rows": stats.get("inputs", {}).get("caf", {}).get("rows"),
        "cpam_rows": stats.get("inputs", {}).get("cpam", {}).get("rows"),
        "funnel": steps,
        "links_total": funnel.get("links_total"),
        "histogram": {
            "bins": [h["from"] for h in hist] + ([hist[-1]["to"]] if hist else []),
            "counts": [h["pairs"] for h in hist],
        },
        "threshold_link": thresholds.get("link_weight"),
        "threshold_review": thresholds.get("review_weight"),
        "clerical_size": stats.get("clerical_review", {}).get("pairs"),
        "m_u": m_u,
        "prior": model.get("prior", {}).get("lambda"),
        "conflicts": stats.get("conflicts"),
        "blocking": stats.get("blocking"),
        **drilldown.model_facts(stats),
        **(drilldown.waterfalls(run_dir / "link_explanations.parquet",
                                run_dir / "clerical_review.parquet", model) if run_dir else {}),
    }


def validation_facts(outcome: Any, run_dir: Path) -> dict[str, Any]:
    """The outcome's summary plus every check record of its results file (counts only)."""
    facts = run_relative(outcome.as_facts(), run_dir)
    doc = read_json(Path(outcome.results_path))
    facts["checks"] = doc.get("checks", [])
    facts["engine"] = doc.get("engine")
    return facts


def manifest_extras(gate: Any) -> dict[str, dict[str, Any]]:
    """agency -> the signed `extra` of its manifest (ingestion counts, quartier names)."""
    manifests = gate.to_dict().get("manifests", {}) if hasattr(gate, "to_dict") else {}
    return {a: (m or {}).get("extra") or {} for a, m in manifests.items()}


def rule_catalogue(rule_ids: list[str]) -> list[dict[str, Any]]:
    """Titles, lists and limits of the rules run, through the detect catalogue loader."""
    from pipeline.central.detect.predicates import load_checked_rules

    wanted = set(rule_ids)
    return [
        {"id": r.id, "titre": r.titre, "source": r.source, "liste": r.liste,
         "agence": r.agence, "priorite": r.priorite,
         "limites": [str(x) for x in (getattr(r, "limites", None) or [])]}
        for r in load_checked_rules() if not wanted or r.id in wanted
    ]


def published_rule_totals(aggregates_csv: Path) -> dict[str, str]:
    """Per-rule totals as published in aggregates.csv (after small-cell suppression).

    detect_stats.json holds the exact counts for the operator; the report can travel further,
    so it shows only what the suppressed table already publishes.
    """
    if not aggregates_csv.exists():
        return {}
    table = pl.read_csv(aggregates_csv, separator=";", infer_schema=False, encoding="utf8-lossy")
    table = table.filter(pl.col("regle") != "Total")  # rule ids are unique across tables
    return dict(zip(table["regle"].to_list(), table["Total"].to_list(), strict=True))


def detection_facts(stats: dict[str, Any], aggregates_csv: Path) -> dict[str, Any]:
    cibles = stats.get("cibles", {})
    foyers = stats.get("foyers", {})
    return {
        "targets": cibles.get("par_liste", {}).get("cible"),
        "a_verifier": cibles.get("par_liste", {}).get("a_verifier"),
        "by_rule": published_rule_totals(aggregates_csv),
        "cells": aggregate_cells(aggregates_csv) if aggregates_csv.exists() else [],
        "excluded_opposition": foyers.get("foyers_exclus_opposition"),
        "warnings": stats.get("avertissements", []),
    }


def parameter_facts(stats: dict[str, Any]) -> dict[str, Any]:
    p = stats.get("parametres_css") or {}
    if not p:
        return {}
    period = str(p.get("periode", ""))
    start, _, end = period.partition("→")
    metro = p.get("plafonds_metropole") or {}
    return {
        "reference_date": p.get("date_reference"),
        "period_from": start.strip() or period,
        "period_to": end.strip(),
        "confirmed": bool(p.get("confirme")),
        "source": "art. L.861-1 et R.861-3 CSS ; pipeline/shared/parameters/css.yaml",
        "gratuite": metro.get("gratuite", {}),
        "participation": metro.get("participation", {}),
        "housing_forfait_monthly": p.get("forfait_logement_mensuel", {}),
    }


def leakage_facts(
    agency: str, central_scan: dict[str, Any], agency_report: dict[str, Any]
) -> dict[str, Any]:
    """Central re-scan of the received file + the agency's frequency-leakage figures.

    The headline is the strongest rank-alignment attack the export allows (within the strata
    it reveals); the details add the public-list attack and what exporting an exact age or a
    5-year band would have leaked, so an auditor sees why the export carries neither.
    """
    freq = agency_report.get("frequence", {})
    attacks = freq.get("attaque_rang", {}) if isinstance(freq, dict) else {}
    details: dict[str, float] = {}
    for token, figures in sorted(attacks.items()):
        for attack, label in (
            ("oracle_global", "fichier entier"),
            ("public_global", "liste publique"),
            ("oracle_par_age", "par année de naissance"),
            ("oracle_par_tranche_5ans", "par tranche de 5 ans"),
        ):
            if isinstance(figures, dict) and figures.get(attack) is not None:
                details[f"{token} · {label}"] = figures[attack]
    details |= _class_attack_details(freq.get("classes_jetons") if isinstance(freq, dict) else None)
    details |= k_anonymity_details(agency_report.get("k_anonymat"))
    details |= residue_attack_details(agency_report.get("residu"))
    return {
        "agency": agency,
        "scan_ok": bool(central_scan.get("ok")),
        "findings": len(central_scan.get("findings", [])),
        "frequency_leakage": freq.get("pire_part_retrouvee"),
        "frequency_threshold": FREQUENCY_LEAKAGE_THRESHOLD,
        "details": details,
    }


def residue_attack_details(residue: Any) -> dict[str, float]:
    """The attacks the agency ran on its residue's Bloom filters (pattern mining, graph
    matching: pipeline/agency/pseudonymise/attacks/bloom_attacks.py), each next to what an
    attacker gets with no filter at all (the prior, or chance for the graph)."""
    a = residue.get("attaques") if isinstance(residue, dict) else None
    if not isinstance(a, dict) or a.get("lignes") is None:
        return {}
    n = int(a["lignes"])
    head = f"résidu (filtres de Bloom, {n} lignes attaquées)"
    graph = a.get("graphe") if isinstance(a.get("graphe"), dict) else {}
    out = {
        f"{head} · année de naissance retrouvée (a priori {fmt_pct(a.get('prior_annee'), 2)})":
            a.get("annee_naissance_retrouvee"),
        f"{head} · date de naissance complète retrouvée (a priori "
        f"{fmt_pct(a.get('prior_date_complete'), 2)})": a.get("date_complete_retrouvee"),
        f"{head} · noms retrouvés": a.get("noms_retrouves"),
        f"{head} · prénoms retrouvés": a.get("prenoms_retrouves"),
        f"{head} · lignes réidentifiées par appariement de graphes (hasard "
        f"{fmt_pct(graph.get('hasard'), 2)})": a.get("reidentifies_graphe"),
    }
    return {k: float(v) for k, v in out.items() if v is not None}


def k_anonymity_details(k: Any) -> dict[str, float]:
    """Shares of households singled out (k = 1) or nearly (k < 5) on the non-token attributes
    (pipeline/shared/kanonymity.py; targets: under 1 % and under 5 %)."""
    if not isinstance(k, dict) or k.get("part_k1") is None:
        return {}
    return {"k-anonymat · foyers uniques (k = 1), objectif < 1 %": k["part_k1"],
            "k-anonymat · foyers k < 5, objectif < 5 %": k["part_k_moins_5"]}


# the views whose k-anonymity a run measures, and their names in the report
K_VIEWS = {"vue_jointe": "caf + cpam (vue jointe de l'opérateur d'appariement)",
           "vue_foyers": "opérateur de détection : vue des foyers",
           "vue_assures": "opérateur de détection : vue des assurés"}


def joined_view_facts(k_stats: dict[str, Any]) -> list[dict[str, Any]]:
    """The views a central operator holds beyond one export (the linking operator's joined
    view; the detecting operator's household and insured views): k-anonymity only."""
    return [{"agency": label, "scan_ok": None, "findings": None,
             "frequency_leakage": None, "frequency_threshold": None,
             "details": k_anonymity_details(k_stats[view])}
            for view, label in K_VIEWS.items() if k_stats.get(view)]


def _class_attack_details(classes: Any) -> dict[str, float]:
    """Token-equivalence classes (pipeline/agency/pseudonymise/attacks): birth-date parts named by
    the
    operator against the no-token guess, and names recovered within the year classes."""
    if not isinstance(classes, dict):
        return {}
    out: dict[str, float] = {}
    for part, found, prior in (
        ("annee", "année de naissance retrouvée", "année de naissance devinée sans jeton"),
        ("mois", "mois de naissance retrouvé", "mois de naissance deviné sans jeton"),
        ("date_complete", "date de naissance complète retrouvée",
         "date de naissance complète devinée sans jeton"),
    ):
        fig = classes.get(part) or {}
        if fig.get("part_retrouvee") is not None:
            out[f"classes de jetons · {found}"] = fig["part_retrouvee"]
            out[f"classes de jetons · {prior}"] = fig["a_priori"]
    for token, figures in sorted((classes.get("attaque_rang_par_classe") or {}).items()):
        for attack, label in (("oracle_par_classe_annee_sexe", "par classe d'année et sexe"),
                              ("table_publique_par_annee_sexe", "table publique des prénoms")):
            if figures.get(attack) is not None:
                out[f"{token} · {label}"] = figures[attack]
    return out


def run_relative(facts: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Paths inside the run folder, relative to it: the folder is renamed once complete, and
    the same run elsewhere must give the same report bytes."""
    path = facts.get("results_path")
    if path and Path(path).is_relative_to(run_dir):
        facts = {**facts, "results_path": str(Path(path).relative_to(run_dir))}
    return facts


def collect_facts(
    staging: Path,
    *,
    gate: Any,
    leak: dict[str, dict[str, Any]],
    agency_leakage: dict[str, dict[str, Any]],
    validations: list[Any],
    audit_status: dict[str, Any],
    run_id: str,
    today: date,
    warnings: list[str],
    role: str | None = None,
) -> dict[str, Any]:
    """The report's facts; `role` « appariement »: the linking operator's run under the
    separated detection (no detection of its own, its k-anonymity in K_FILE)."""
    detect_stats = read_json(staging / "detect_stats.json")
    k_stats = (detect_stats.get("k_anonymat") or detect_stats.get("k_anonymat_detection")
               or read_json(staging / K_FILE))
    extras = manifest_extras(gate)
    return {
        **({"role": role} if role else {}),
        "run": {
            "run_id": run_id,
            "created_at": today.isoformat(),
            "reference_date": detect_stats.get("date_reference"),
            "territory": gate.convention.get("territory", "")
            if hasattr(gate, "convention")
            else "",
            "tool_version": __version__,
        },
        "gate": gate.to_dict(),
        "validations": [validation_facts(v, staging) for v in validations],
        "linkage": ({} if role == "detection" else
                    linkage_facts(read_json(staging / "link_stats.json"), staging)),
        "ingestion": {a: e["ingestion"] for a, e in sorted(extras.items()) if "ingestion" in e},
        "quartiers": extras.get("caf", {}).get("quartiers", {}),
        "rules": rule_catalogue(list(getattr(gate, "rules", []) or [])),
        "reconciliation": drilldown.reconciliation(staging / "targets.parquet", detect_stats),
        "detection": detection_facts(detect_stats, staging / "aggregates.csv"),
        "leakage": [leakage_facts(a, leak[a], agency_leakage.get(a, {})) for a in sorted(leak)]
        + joined_view_facts(k_stats),
        "audit": audit_status,
        "parameters": parameter_facts(detect_stats),
        "versions": collect_versions(),
        "warnings": warnings,
    }
