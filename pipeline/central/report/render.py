"""The auditor report: one self-contained French HTML file and the same facts as JSON.

`render_report(run_dir, facts)` builds a view model section by section (each section survives a
missing or malformed part and is then shown as « non disponible »), derives the loud warnings
(unconfirmed CSS table, missing signature, broken audit chain, critical validation failure,
leak...), refuses to publish anything that looks like a NIR or a phone number, and writes
`report.html` and `report.json` atomically. The HTML has inline CSS and hand-drawn inline SVG:
no script, no font, no image, no request of any kind, so it opens offline and prints cleanly.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import math
import re
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import polars as pl

from pipeline.central.report import charts
from pipeline.central.report.facts import OTHER_REPORT, ROLE_SECTIONS, SECTION_IDS
from pipeline.common.errors import PipelineError
from pipeline.common.files import write_text
from pipeline.common.french import integer
from pipeline.shared import suppression
from pipeline.shared.linkage_model import load_config

NA = "non disponible"
REPORT_SCHEMA_VERSION = 1

STAGE_LABELS = {
    "caf_raw": "Extrait brut CAF", "cpam_raw": "Extrait brut CPAM",
    "caf_ingested": "Table CAF normalisée", "cpam_ingested": "Table CPAM normalisée",
    "caf_export": "Export pseudonymisé CAF", "cpam_export": "Export pseudonymisé CPAM",
    "pseudo_caf": "Export pseudonymisé CAF", "pseudo_cpam": "Export pseudonymisé CPAM",
    "links": "Liens entre personnes", "clerical_review": "Paires en revue manuelle",
    "targets": "Foyers à contacter",
    "caf_detection": "Fichier des foyers CAF (détection)",
    "cpam_detection": "Assurés en CSS gratuite (détection)",
}
# Pass labels come from pipeline/shared/comparisons.yaml (`label`, `short`), never spelled here.
REVIEW_LABEL = "bande de revue manuelle"


@functools.cache
def _pass_labels() -> tuple[dict[str, str], dict[str, str]]:
    """(long, short) labels of every pass name links.parquet may carry."""
    cfg = load_config()
    every = [*cfg.passes, cfg.probabilistic_pass,
             *([cfg.residue_pass] if cfg.residue_pass else [])]
    return ({p.name: p.label for p in every} | {"revue": REVIEW_LABEL},
            {p.name: p.short for p in every})


def pass_label(name: str) -> str:
    return _pass_labels()[0].get(name, name)


def short_pass_label(name: str) -> str:
    return _pass_labels()[1].get(name, name)


SIGNATURE_LABELS = {"valide": "signature valide", "invalide": "signature INVALIDE",
                    "absente": "signature ABSENTE"}

# Identifier-looking strings that must never be published (see suites/_patterns.yaml for the
# data-side checks). Bounded so that hex hashes and decimal numbers do not trigger them.
_NIR_RE = re.compile(
    r"(?<![0-9A-Za-z.])[1-478][0-9]{4}(?:[0-9]{2}|2A|2B)[0-9]{6}(?:[0-9]{2})?(?![0-9A-Za-z])"
)
_PHONE_RE = re.compile(
    r"(?<![0-9A-Za-z.,])0[1-9](?: ?[0-9]{2}){4}(?![0-9A-Za-z])|\+33 ?[1-9]"
)

_SECTION_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError, OSError,
                   pl.exceptions.PolarsError)


# --------------------------------------------------------------------------- small helpers


def _get(d: Any, *path: str, default: Any = None) -> Any:
    for key in path:
        if not isinstance(d, Mapping) or key not in d:
            return default
        d = d[key]
    return d


def _round(x: Any) -> Any:
    """Floats to 6 significant digits: stable JSON, and no long digit runs in the output."""
    if isinstance(x, float):
        if math.isnan(x) or math.isinf(x):
            return None
        return float(f"{x:.6g}")
    if isinstance(x, Mapping):
        return {str(k): _round(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_round(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    return x


def fmt_int(n: Any) -> str:
    try:
        return integer(int(n))
    except (TypeError, ValueError):
        return NA


def fmt_count(n: Any, threshold: int | None = None) -> str:
    """A household count as released outside the agencies: 1..10 shows as « < 11 »
    (the threshold and its label come from pipeline/shared/suppression.py)."""
    try:
        v = int(n)
    except (TypeError, ValueError):
        return NA
    return suppression.primary_label(threshold) if suppression.is_small(v, threshold) \
        else fmt_int(v)


def fmt_pct(x: Any, digits: int = 1) -> str:
    try:
        return f"{float(x) * 100:.{digits}f}".replace(".", ",") + "\u00a0%"
    except (TypeError, ValueError):
        return NA


def fmt_num(x: Any, digits: int = 2) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return NA
    if v.is_integer() and abs(v) >= 1:
        return fmt_int(v)
    if v != 0 and abs(v) < 10 ** -digits:  # tiny probabilities (u): keep significant digits
        mantissa, exp = f"{v:.2e}".split("e")
        sup = str(int(exp)).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
        return f"{mantissa.replace('.', ',')} × 10{sup}"
    return f"{v:.{digits}f}".replace(".", ",")


def _section(builder: Callable[[dict], dict], facts: dict) -> dict:
    try:
        view = builder(facts)
    except _SECTION_ERRORS as exc:
        return {"available": False, "reason": f"données incomplètes ({type(exc).__name__})"}
    return view


# --------------------------------------------------------------------------- sections


def _convention(facts: dict) -> dict:
    gate = facts.get("gate")
    if not isinstance(gate, Mapping) or not gate:
        return {"available": False, "reason": "résultat du contrôle d'entrée absent"}
    conv = gate.get("convention") or {}
    parties_src = gate.get("parties") or conv.get("parties") or {}
    sigs = gate.get("signatures") or conv.get("signatures") or {}
    parties = []
    for pid in sorted(parties_src):
        p = parties_src[pid] or {}
        status = str(sigs.get(pid, "absente"))
        parties.append({
            "id": pid, "name": p.get("name", pid), "roles": ", ".join(p.get("roles") or []),
            "key_id": p.get("key_id", ""), "signature": status,
            "signature_label": SIGNATURE_LABELS.get(status, status),
            "ok": status == "valide",
        })
    return {
        "available": True,
        "id": gate.get("convention_id") or conv.get("id") or NA,
        "title": conv.get("title", ""),
        "demo": bool(conv.get("demo", False)),
        "valid_from": conv.get("valid_from", NA),
        "valid_until": conv.get("valid_until", NA),
        "retention_days": conv.get("retention_days"),
        "legal_basis": list(conv.get("legal_basis") or []),
        "purpose": conv.get("purpose", ""),
        "parties": parties,
        "all_signed": bool(parties) and all(p["ok"] for p in parties),
        "rules": list(gate.get("rules") or conv.get("rules") or []),
        "key_fingerprint": gate.get("key_fingerprint") or conv.get("linkage_key_fingerprint")
        or NA,
        "verdict": gate.get("verdict", NA),
        "reference_files": [{"fichier": k, "sha256": v} for k, v in
                            sorted((gate.get("fichiers_reference") or {}).items())],
        "parameter_table": dict(gate.get("table_parametres") or {}),
    }


def _manifests(facts: dict) -> dict:
    src = _get(facts, "gate", "manifests")
    if not src:
        return {"available": False, "reason": "manifestes non fournis"}
    items = list(src.values()) if isinstance(src, Mapping) else list(src)
    rows = []
    for m in sorted(items, key=lambda m: str(m.get("agency", ""))):
        rows.append({
            "agency": str(m.get("agency", NA)).upper(),
            "file": m.get("file", NA), "sha256": m.get("sha256", NA),
            "rows": fmt_int(m.get("rows")), "key_fingerprint": m.get("key_fingerprint", NA),
            "schema_version": m.get("schema_version", NA),
            "created_at": m.get("created_at", NA), "tool_version": m.get("tool_version", NA),
            "signature": m.get("signature", NA), "ok": m.get("signature") == "valide",
        })
    fps = {r["key_fingerprint"] for r in rows}
    return {"available": True, "rows": rows, "same_key": len(fps) == 1}


def _quality(facts: dict) -> dict:
    vals = facts.get("validations")
    if not vals:
        return {"available": False, "reason": "aucun résultat de validation fourni"}
    suites = []
    for v in vals:
        crit = list(v.get("critical_failures") or [])
        warns = list(v.get("warnings") or [])
        passed = int(v.get("passed") or 0)
        skipped = int(v.get("skipped") or 0)
        stage = str(v.get("stage", NA))
        status = "echec" if crit or v.get("success") is False else (
            "avertissement" if warns else "conforme")
        suites.append({
            "stage": stage, "label": STAGE_LABELS.get(stage, stage), "status": status,
            "passed": passed, "warnings_n": len(warns), "critical_n": len(crit),
            "skipped": skipped, "critical_failures": crit, "warnings": warns,
            "results_path": Path(str(v.get("results_path", ""))).name or NA,
            "bar": charts.bar_share_svg(passed, len(warns), len(crit), skipped),
        })
    return {"available": True, "suites": suites,
            "all_ok": all(s["status"] != "echec" for s in suites)}


def _linkage(facts: dict) -> dict:
    lk = facts.get("linkage")
    if not isinstance(lk, Mapping) or not lk:
        return {"available": False, "reason": "statistiques d'appariement absentes"}
    funnel_src = lk.get("funnel") or []
    if isinstance(funnel_src, Mapping):
        funnel_src = [{"pass": k, "links": v} for k, v in funnel_src.items()]
    steps = [(str(s.get("pass", s.get("pass_", "?"))), int(s.get("links") or 0))
             for s in funnel_src]
    caf, cpam = lk.get("caf_rows"), lk.get("cpam_rows")
    total = lk.get("links_total")
    if total is None and steps:
        total = sum(v for _, v in steps)
    denom = min(int(x) for x in (caf, cpam) if x is not None) if (caf or cpam) else None
    cumulative, funnel = 0, []
    for p, v in steps:
        cumulative += v
        funnel.append({"pass": p, "label": pass_label(p), "links": fmt_int(v),
                       "cumulative": fmt_int(cumulative),
                       "share": fmt_pct(cumulative / denom) if denom else NA})
    hist = lk.get("histogram") or {}
    bins, counts = list(hist.get("bins") or []), list(hist.get("counts") or [])
    review, link = lk.get("threshold_review"), lk.get("threshold_link")
    mu = [{"comparison": r.get("comparison", ""), "level": r.get("level", ""),
           "m": fmt_num(r.get("m"), 4), "u": fmt_num(r.get("u"), 4),
           "weight": fmt_num(math.log2(r["m"] / r["u"]), 2)
           if r.get("m") and r.get("u") else NA}
          for r in lk.get("m_u") or []]
    return {
        "available": True,
        "caf_rows": fmt_int(caf), "cpam_rows": fmt_int(cpam), "links_total": fmt_int(total),
        "link_rate": fmt_pct(total / denom) if denom and total is not None else NA,
        "funnel": funnel,
        "funnel_svg": charts.funnel_svg([(short_pass_label(p), v) for p, v in steps],
                                        denom),
        "histogram_svg": charts.histogram_svg(bins, counts, review=review, link=link),
        "has_histogram": bool(counts) and len(bins) == len(counts) + 1,
        "clerical_size": fmt_int(lk.get("clerical_size")),
        "threshold_review": fmt_num(review), "threshold_link": fmt_num(link),
        "prior": fmt_num(lk.get("prior"), 4), "m_u": mu,
    }


CHECK_STATUS = {True: "conforme", False: "échec", None: "non évaluée"}
SEVERITY_LABELS = {"critical": "critique", "warning": "avertissement"}


def _observed(c: Mapping) -> str:
    """What the check saw, as counts, ratios or column names (never a data value)."""
    if not c.get("evaluated"):
        return str(c.get("message", "non évaluée"))
    if str(c.get("type", "")).startswith("cross_check"):
        return (f"{fmt_int(c.get('published'))} cellule(s) publiée(s), "
                f"{fmt_int(c.get('mismatched'))} différente(s), "
                f"{fmt_int(c.get('primary_inconsistent'))} masquée(s) incohérente(s)")
    parts = []
    if c.get("unexpected_columns"):
        parts.append("colonnes non autorisées : " + ", ".join(c["unexpected_columns"]))
    if c.get("missing_columns"):
        parts.append("colonnes manquantes : " + ", ".join(c["missing_columns"]))
    if "unexpected_count" in c:
        n, total = c.get("unexpected_count"), c.get("element_count")
        missing = c.get("missing_count") or 0
        pct = c.get("unexpected_percent")
        parts.append(f"{fmt_int(n)} non conforme(s) sur {fmt_int((total or 0) - missing)}"
                     + (f" ({fmt_num(pct, 2)} %)" if pct is not None else ""))
        if missing:
            parts.append(f"{fmt_int(missing)} vide(s), non comptée(s)")
    if "observed_value" in c:
        unit = {"expect_table_row_count_to_be_between": " ligne(s)",
                "expect_column_unique_value_count_to_be_between": " valeur(s) distincte(s)"}
        parts.append(f"{fmt_int(c['observed_value'])}{unit.get(c.get('type'), '')}")
    return " ; ".join(parts) or ("jeu de colonnes conforme" if c.get("success") else
                                 "non conforme")


def _expectations(facts: dict) -> dict:
    vals = facts.get("validations")
    if not vals or not any(v.get("checks") for v in vals):
        return {"available": False, "reason": "résultats détaillés des contrôles non fournis"}
    suites = []
    for v in vals:
        stage = str(v.get("stage", NA))
        rows = [{
            "label": c.get("label", ""), "column": c.get("column") or "",
            "expected": c.get("expected", ""),
            "severity": SEVERITY_LABELS.get(c.get("severity"), c.get("severity", "")),
            "status": CHECK_STATUS.get(c.get("success")), "observed": _observed(c),
            "reason": "" if c.get("success") is not False else str(c.get("message", "")),
        } for c in v.get("checks") or []]
        failed = sum(1 for r in rows if r["status"] == "échec")
        suites.append({"stage": stage, "label": STAGE_LABELS.get(stage, stage),
                       "anchor": f"attentes-{stage}", "rows": rows, "failed": failed,
                       "engine": v.get("engine") or NA, "open": failed > 0})
    return {"available": True, "suites": suites}


def _ingestion(facts: dict) -> dict:
    src = facts.get("ingestion")
    if not isinstance(src, Mapping) or not src:
        return {"available": False, "reason": "les manifestes reçus ne portent pas les "
                                              "comptes d'ingestion"}
    agencies = []
    for agency in sorted(src):
        a = src[agency] or {}
        reasons = sorted(a.get("motifs") or [], key=lambda m: (str(m.get("action")),
                                                                 -int(m.get("nombre") or 0)))
        quarantine = a.get("quarantaine") or {}
        agencies.append({
            "agency": agency.upper(), "read": fmt_int(a.get("lues")),
            "accepted": fmt_int(a.get("acceptees")), "rejected": fmt_int(a.get("rejetees")),
            "warnings": fmt_int(a.get("avertissements")),
            "reasons": [{"action": m.get("action") or "", "column": m.get("colonne") or "",
                         "reason": m.get("motif") or "", "count": fmt_int(m.get("nombre"))}
                        for m in reasons + list(a.get("quarantaine_motifs") or [])],
            "quarantine": [{"name": k, "count": fmt_int(v)} for k, v in sorted(quarantine.items())],
        })
    return {"available": True, "agencies": agencies}


def _pair_view(p: Mapping, link: Any, review: Any) -> dict:
    steps = []
    for st in p.get("steps") or []:
        steps.append((f"{st['comparison']} : {st['level']}", float(st.get("weight") or 0)))
        if st.get("tf_weight"):
            steps.append((f"{st['comparison']} : fréquence", float(st["tf_weight"])))
    total = float(p.get("match_weight") or 0)
    return {
        "ref": str(p.get("ref", "")), "pass": pass_label(str(p.get("pass", ""))),
        "weight": fmt_num(total), "prior": fmt_num(p.get("prior")),
        "probability": fmt_pct(1 / (1 + 2 ** -total), 2),
        "steps": [{"label": lab, "weight": fmt_num(w)} for lab, w in steps],
        "waterfall_svg": charts.waterfall_svg(float(p.get("prior") or 0), steps, total, link=link,
                                    review=review),
    }


def _model(facts: dict) -> dict:
    lk = facts.get("linkage")
    if not isinstance(lk, Mapping) or (not lk.get("blocking_rules") and not lk.get("em")):
        return {"available": False, "reason": "paramètres du modèle absents"}
    em = lk.get("em") or {}
    conv = em.get("converged")
    return {
        "available": True,
        "blocking": [{"rule": r.get("rule", ""), "on": r.get("on", ""),
                      "pairs": fmt_int(r.get("pairs")), "new_pairs": fmt_int(r.get("new_pairs"))}
                     for r in lk.get("blocking_rules") or []],
        "candidates": fmt_int(lk.get("blocking_candidates")),
        "iterations": fmt_int(em.get("iterations")),
        "converged": "oui" if conv else ("non" if conv is False else NA),
        "converged_ok": bool(conv),
        "in_block_share": fmt_pct(em.get("in_block_match_share"), 2),
        "expected_matches": fmt_num(em.get("in_block_expected_matches"), 1),
        "u_sample": fmt_int(em.get("u_sample_pairs")),
        "patterns": fmt_int(em.get("patterns")),
        "prior": fmt_num(lk.get("prior"), 6), "prior_weight": fmt_num(lk.get("prior_weight")),
        "det_links": fmt_int(lk.get("deterministic_links")),
        "recall_assumed": fmt_pct(lk.get("deterministic_recall_assumed"), 0),
        "left_caf": fmt_int((lk.get("records_left") or {}).get("caf")),
        "left_cpam": fmt_int((lk.get("records_left") or {}).get("cpam")),
        "passes": [{"label": p.get("label") or p.get("pass"), "candidates":
                    fmt_int(p.get("candidates")), "linked": fmt_int(p.get("linked")),
                    "tie_break": fmt_int(p.get("tie_break")),
                    "ambiguous": fmt_int(p.get("ambiguous"))} for p in lk.get("passes") or []],
        "tf": ", ".join(lk.get("tf_adjusted") or []) or "aucune",
    }


def _links(facts: dict) -> dict:
    lk = facts.get("linkage")
    if not isinstance(lk, Mapping) or lk.get("sample") is None:
        return {"available": False, "reason": "explications des liens absentes"}
    link, review = lk.get("threshold_link"), lk.get("threshold_review")
    hists = []
    for p, h in sorted((lk.get("by_pass") or {}).items()):
        hists.append({"pass": pass_label(p), "total": fmt_int(sum(h["counts"])),
                      "hist_svg": charts.histogram_svg(h["bins"], h["counts"], review=review,
                                                  link=link)})
    return {"available": True, "threshold_link": fmt_num(link),
            "pairs": [_pair_view(p, link, review) for p in lk["sample"]], "histograms": hists}


def _review(facts: dict) -> dict:
    lk = facts.get("linkage")
    if not isinstance(lk, Mapping) or lk.get("clerical") is None:
        return {"available": False, "reason": "paires de la bande de revue absentes"}
    link, review = lk.get("threshold_link"), lk.get("threshold_review")
    return {"available": True, "n": fmt_int(len(lk["clerical"])),
            "threshold_review": fmt_num(review), "threshold_link": fmt_num(link),
            "pairs": [_pair_view(p, link, review) for p in lk["clerical"]]}


def _rules(facts: dict) -> dict:
    rules = facts.get("rules")
    if not rules:
        return {"available": False, "reason": "catalogue des règles non fourni"}
    by_rule = _get(facts, "detection", "by_rule", default={}) or {}
    return {"available": True, "rows": [{
        "id": r.get("id", ""), "title": r.get("titre", r.get("id", "")),
        "list": "liste cible" if r.get("liste") == "cible" else "à vérifier",
        "agency": str(r.get("agence", "")).upper(), "priority": r.get("priorite", NA),
        "source": r.get("source", ""), "limits": list(r.get("limites") or []),
        "households": _published(by_rule.get(r.get("id"))),
    } for r in rules]}


def _published(v: Any) -> str:
    if v is None:
        return NA
    text = str(v)
    return fmt_count(text) if text.isdigit() else text


def _reconciliation(facts: dict) -> dict:
    rc = facts.get("reconciliation")
    if not isinstance(rc, Mapping) or not rc.get("by_agency_list"):
        return {"available": False, "reason": "table des cibles non fournie"}
    lists = {"cible": "liste cible", "a_verifier": "liste « à vérifier »"}
    by = rc["by_agency_list"]

    def total(li: str) -> int:
        return sum(int(r["households"]) for r in by if r["list"] == li)

    rule_rows = rc.get("rule_rows") or {}
    return {
        "available": True,
        "console": fmt_count(rc.get("console_total", rc.get("rows"))),
        "rows": fmt_count(rc.get("rows")), "households": fmt_count(rc.get("households")),
        "cible": fmt_count(total("cible")), "a_verifier": fmt_count(total("a_verifier")),
        "by_agency": [{"agency": r["agency"].upper(), "list": lists.get(r["list"], r["list"]),
                       "households": fmt_count(r["households"]),
                       "file": f"{r['agency']}/listes"} for r in by],
        "rule_rows": fmt_count(rule_rows.get("cible")),
        "multi_rule": fmt_count((rc.get("multi_rule") or {}).get("cible")),
        "consistent": rc.get("console_total") in (None, rc.get("rows")),
    }


def aggregate_cells(path: str | Path) -> list[dict]:
    """aggregates.csv (wide: tableau;regle;<quartiers>;Total) as one cell per row."""
    text = Path(path).read_bytes().decode("utf-8-sig")
    df = pl.read_csv(io.StringIO(text), separator=";", infer_schema=False)
    long = df.unpivot(index=["tableau", "regle"], variable_name="quartier", value_name="label")
    return long.to_dicts()


SPECIAL_QUARTIERS = {"HORS_TERRITOIRE": "hors territoire", "NON_LOCALISE": "non localisé",
                     "Total": "Total"}


def quartier_name(code: str, names: Mapping) -> str:
    """The territory table's name for a quartier code (the code itself when unknown)."""
    return str(names.get(code) or SPECIAL_QUARTIERS.get(code) or code)


def _detection(facts: dict) -> dict:
    det = facts.get("detection")
    if not isinstance(det, Mapping) or not det:
        return {"available": False, "reason": "résultats de détection absents"}
    names = facts.get("quartiers") if isinstance(facts.get("quartiers"), Mapping) else {}
    titles = {str(r.get("id")): str(r.get("titre") or r.get("id")) for r in
              facts.get("rules") or [] if isinstance(r, Mapping)}
    cells = det.get("cells")
    if cells is None and det.get("aggregates_csv"):
        cells = aggregate_cells(det["aggregates_csv"])
    tables = []
    for tableau in sorted({str(c.get("tableau", "non_recours")) for c in cells or []},
                          key=lambda t: (t != "non_recours", t)):
        sub = [c for c in cells if str(c.get("tableau", "non_recours")) == tableau]
        quartiers = sorted({str(c["quartier"]) for c in sub} - {"Total"})
        if any(str(c["quartier"]) == "Total" for c in sub):
            quartiers.append("Total")
        regles = sorted({str(c["regle"]) for c in sub} - {"Total"})
        if any(str(c["regle"]) == "Total" for c in sub):
            regles.append("Total")
        lookup = {}
        for c in sub:
            label = c.get("label")
            if label is None:
                label = (suppression.primary_label() if c.get("suppressed")
                         and c.get("count") is None else suppression.SECONDARY_LABEL
                         if c.get("suppressed") else str(c.get("count", "")))
            label = str(label)
            suppressed = bool(c.get("suppressed")) or not label.strip().isdigit()
            lookup[(str(c["regle"]), str(c["quartier"]))] = {
                "label": label if not label.isdigit() else fmt_int(label),
                "suppressed": suppressed,
            }
        # One row per quartier, one column per rule: territories have many more quartiers
        # than rules, and the page stays printable.
        rows = [{"quartier": q, "name": quartier_name(q, names), "total": q == "Total",
                 "cells": [lookup.get((r, q), {"label": "0", "suppressed": False})
                           for r in regles]} for q in quartiers]
        tables.append({
            "name": tableau,
            "title": "Non-recours présumé (liste cible)" if tableau == "non_recours"
            else "À vérifier (non retrouvés à la CPAM)" if tableau == "a_verifier" else tableau,
            "regles": regles, "rows": rows,
            "titles": [titles.get(r, r) for r in regles],
            "linked": [r in titles for r in regles],
        })
    return {
        "available": True,
        "targets": fmt_count(det.get("targets")), "a_verifier": fmt_count(det.get("a_verifier")),
        "excluded_opposition": fmt_count(det.get("excluded_opposition")),
        "tables": tables,
        "warnings": [str(w) for w in det.get("warnings") or []],
    }


def _privacy(facts: dict) -> dict:
    src = facts.get("leakage")
    if not src:
        return {"available": False, "reason": "contrôles de confidentialité non fournis"}
    items = [dict(v, agency=v.get("agency", k)) for k, v in src.items()] \
        if isinstance(src, Mapping) else list(src)
    rows = []
    for it in sorted(items, key=lambda i: str(i.get("agency", ""))):
        share, thr = it.get("frequency_leakage"), it.get("frequency_threshold")
        over = share is not None and thr is not None and float(share) > float(thr)
        scan_ok = it.get("scan_ok", it.get("ok"))
        rows.append({
            "agency": str(it.get("agency", NA)).upper(),
            "scan_ok": scan_ok,
            "scan_label": NA if scan_ok is None else ("aucun identifiant détecté" if scan_ok
                                                      else "IDENTIFIANTS DÉTECTÉS"),
            "findings": fmt_int(it.get("findings", 0 if scan_ok else None)),
            "share": fmt_pct(share, 2) if share is not None else NA,
            "threshold": fmt_pct(thr, 2) if thr is not None else NA,
            "over": over,
            "details": [{"token": k, "share": fmt_pct(v, 2)}
                        for k, v in sorted((it.get("details") or {}).items())],
        })
    return {"available": True, "rows": rows}


def _audit(facts: dict) -> dict:
    a = facts.get("audit")
    if not isinstance(a, Mapping) or "ok" not in a:
        return {"available": False, "reason": "vérification du journal d'audit non fournie"}
    return {
        "available": True, "ok": bool(a["ok"]), "entries": fmt_int(a.get("entries")),
        "head": a.get("head") or NA, "broken_line": a.get("broken_line"),
        "reason": a.get("reason") or "",
    }


def _parameters(facts: dict) -> dict:
    p = facts.get("parameters")
    if not isinstance(p, Mapping) or not p.get("gratuite"):
        return {"available": False, "confirmed": False,
                "reference_date": _get(facts, "run", "reference_date", default=NA),
                "reason": "aucun barème CSS fourni pour la date de référence"}
    sizes = [k for k in ("1", "2", "3", "4", "extra")]
    g = {str(k): v for k, v in p["gratuite"].items()}
    c = {str(k): v for k, v in (p.get("participation") or {}).items()}
    rows = [{"size": "par personne en plus" if s == "extra" else f"{s} personne{'s' * (s != '1')}",
             "gratuite": fmt_int(g.get(s)) + " €" if g.get(s) is not None else NA,
             "participation": fmt_int(c.get(s)) + " €" if c.get(s) is not None else NA}
            for s in sizes]
    housing = p.get("housing_forfait_monthly") or {}
    return {
        "available": True, "confirmed": bool(p.get("confirmed", False)),
        "reference_date": p.get("reference_date") or _get(facts, "run", "reference_date",
                                                          default=NA),
        "period_from": p.get("period_from", NA), "period_to": p.get("period_to", NA),
        "source": p.get("source", ""), "rows": rows,
        "overseas_uplift": fmt_pct(p["overseas_uplift"]) if p.get("overseas_uplift") else NA,
        "housing": [{"size": str(k), "monthly": fmt_num(v) + " €"}
                    for k, v in sorted(housing.items(), key=lambda kv: str(kv[0]))],
    }


def _versions(facts: dict) -> dict:
    v = facts.get("versions")
    if not isinstance(v, Mapping) or not v:
        return {"available": False, "reason": "versions non fournies"}
    return {"available": True, "rows": [{"name": k, "version": str(v[k])} for k in sorted(v)]}


def _alerts(view: dict, facts: dict) -> list[dict]:
    """Loud warnings derived from the sections, most serious first."""
    out: list[dict] = []

    def add(level: str, text: str) -> None:
        out.append({"level": level, "text": text})

    params = view["parametres"]
    if params.get("ailleurs"):
        pass  # the detecting operator's report carries the parameters and their alert
    elif not params.get("available") or not params.get("confirmed"):
        add("critique",
            f"Aucun barème CSS confirmé pour la date de référence "
            f"{params.get('reference_date', NA)} : les plafonds appliqués ne sont pas "
            "officiellement confirmés ; les résultats de détection doivent être vérifiés avant "
            "tout usage.")
    conv = view["convention"]
    if not conv.get("available"):
        add("critique", "Le contrôle de la convention n'est pas documenté dans ce rapport.")
    else:
        for p in conv["parties"]:
            if not p["ok"]:
                add("critique", f"Convention {conv['id']} : {p['name']} — {p['signature_label']}.")
        if conv.get("verdict") not in ("accepte", NA):
            add("critique", f"Contrôle d'entrée : verdict « {conv['verdict']} ».")
        if conv.get("demo"):
            add("info", "Convention de démonstration : données entièrement synthétiques.")
    man = view["manifestes"]
    if man.get("available"):
        for r in man["rows"]:
            if not r["ok"]:
                add("critique", f"Manifeste {r['agency']} : signature « {r['signature']} ».")
        if not man["same_key"]:
            add("critique", "Les manifestes ne portent pas la même empreinte de clé de liaison.")
    q = view["qualite"]
    if q.get("available"):
        for s in q["suites"]:
            if s["critical_n"]:
                add("critique", f"Validation « {s['label']} » : {s['critical_n']} contrôle(s) "
                                "critique(s) en échec.")
            elif s["warnings_n"]:
                add("avertissement", f"Validation « {s['label']} » : {s['warnings_n']} "
                                     "avertissement(s).")
    priv = view["confidentialite"]
    if priv.get("available"):
        for r in priv["rows"]:
            if r["scan_ok"] is False:
                add("critique", f"Export {r['agency']} : des valeurs ressemblant à des "
                                "identifiants en clair ont été détectées.")
            if r["over"]:
                add("avertissement", f"Export {r['agency']} : fuite par fréquence {r['share']} "
                                     f"au-dessus du seuil {r['threshold']}.")
    model = view["modele"]
    if model.get("available") and not model["converged_ok"]:
        add("avertissement", f"Modèle d'appariement : l'estimation EM n'a pas convergé "
                             f"({model['iterations']} itérations).")
    rec = view["rapprochement"]
    if rec.get("available") and not rec["consistent"]:
        add("critique", f"Les totaux ne se rapprochent pas : console {rec['console']}, "
                        f"table des cibles {rec['rows']}.")
    aud = view["audit"]
    if aud.get("available") and not aud["ok"]:
        where = f" à la ligne {aud['broken_line']}" if aud.get("broken_line") else ""
        add("critique", f"Journal d'audit rompu{where} : {aud.get('reason') or 'voir détail'}.")
    elif not aud.get("available"):
        add("avertissement", "L'intégrité du journal d'audit n'a pas été vérifiée.")
    for w in facts.get("warnings") or []:
        add("avertissement", str(w))
    order = {"critique": 0, "avertissement": 1, "info": 2}
    return sorted(out, key=lambda a: order[a["level"]])


def build_view(facts: dict) -> dict:
    """The report's content as plain data (also what report.json holds)."""
    facts = _round(_jsonable(dict(facts or {})))
    run = facts.get("run") if isinstance(facts.get("run"), Mapping) else {}
    view: dict[str, Any] = {
        "schema_version": REPORT_SCHEMA_VERSION,
        "run": {
            "run_id": run.get("run_id", NA), "created_at": run.get("created_at", NA),
            "reference_date": run.get("reference_date", NA),
            "territory": run.get("territory", ""), "tool_version": run.get("tool_version", NA),
        },
        "convention": _section(_convention, facts),
        "manifestes": _section(_manifests, facts),
        "ingestion": _section(_ingestion, facts),
        "qualite": _section(_quality, facts),
        "attentes": _section(_expectations, facts),
        "appariement": _section(_linkage, facts),
        "modele": _section(_model, facts),
        "liens": _section(_links, facts),
        "revue": _section(_review, facts),
        "detection": _section(_detection, facts),
        "regles": _section(_rules, facts),
        "rapprochement": _section(_reconciliation, facts),
        "confidentialite": _section(_privacy, facts),
        "audit": _section(_audit, facts),
        "parametres": _section(_parameters, facts),
        "versions": _section(_versions, facts),
    }
    role = facts.get("role")
    if role in ROLE_SECTIONS:
        for section in set(SECTION_IDS) - set(ROLE_SECTIONS[role]) - {"alertes"}:
            view[section] = {**view[section], "available": False,
                             "reason": OTHER_REPORT[role], "ailleurs": True}
        view["role"] = role
    view["alertes"] = _alerts(view, facts)
    view["verdict"] = (
        "anomalies" if any(a["level"] == "critique" for a in view["alertes"]) else
        "reserves" if any(a["level"] == "avertissement" for a in view["alertes"]) else "conforme"
    )
    return view


def _check_no_identifiers(text: str) -> None:
    for name, rx in (("un NIR", _NIR_RE), ("un numéro de téléphone", _PHONE_RE)):
        if rx.search(text):
            raise PipelineError(
                f"rapport non écrit : une valeur ressemble à {name} ; les faits fournis au rapport "
                "ne doivent contenir aucun identifiant en clair"
            )


def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(
            lambda name: resources.files("pipeline.central.report").joinpath("templates", name)
            .read_text(encoding="utf-8")
        ),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env.get_template("report.html.j2")


def render_report(run_dir: Path, facts: dict) -> tuple[Path, Path]:
    """Write run_dir/report.html and run_dir/report.json (atomically); return their paths."""
    run_dir = Path(run_dir)
    view = build_view(facts)
    html = _template().render(v=view, section_ids=SECTION_IDS, NA=NA,
                              small_cell=suppression.threshold())
    # The JSON carries the same view without the drawings, plus the facts as received (rounded).
    doc = {"report": _strip_svg(view), "facts": _mask_detection(_round(_jsonable(facts or {})))}
    json_text = json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True, default=str) + "\n"
    _check_no_identifiers(json_text)
    json_path = write_text(run_dir / "report.json", json_text)
    html_path = write_text(run_dir / "report.html", html)
    return html_path, json_path


def _mask_detection(facts: dict) -> dict:
    """Household counts under the small-cell threshold never reach report.json either."""
    det = facts.get("detection")
    if isinstance(det, dict):
        det = dict(det)
        for key in ("targets", "a_verifier", "excluded_opposition"):
            if key in det:
                det[key] = suppression.mask_count(det[key])
        if isinstance(det.get("by_rule"), dict):
            det["by_rule"] = {k: suppression.mask_count(v) for k, v in det["by_rule"].items()}
        facts = dict(facts, detection=det)
    return facts


def _strip_svg(x: Any) -> Any:
    """A deep copy of the view without the inline SVG strings (they are presentation only)."""
    if isinstance(x, Mapping):
        return {k: _strip_svg(v) for k, v in x.items() if not k.endswith("_svg") and k != "bar"}
    if isinstance(x, list):
        return [_strip_svg(v) for v in x]
    return x


def _jsonable(x: Any) -> Any:
    """Plain JSON types; objects exposing `to_dict()` / `as_facts()` (stage results) unwrap."""

    def default(o: Any) -> Any:
        for attr in ("as_facts", "to_dict"):
            if callable(getattr(o, attr, None)):
                return getattr(o, attr)()
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return dataclasses.asdict(o)
        if isinstance(o, set | frozenset):
            return sorted(o, key=str)
        return str(o)

    return json.loads(json.dumps(x, default=default))
