"""Drill-down facts: waterfalls that add up, every clerical pair, totals that reconcile, and the
aggregate ingestion facts an export carries in its signed manifest."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from report_fixtures import complete_facts

from pipeline.agency.pseudonymise.export_facts import export_facts
from pipeline.central.report.drilldown import pair_ref, reconciliation, waterfalls
from pipeline.central.report.render import build_view, render_report

MODEL = {"comparisons": [
    {"comparison": "nom", "label": "Nom", "levels": [
        {"level": "exact", "label": "nom identique"}, {"level": "else", "label": "différent"}]},
    {"comparison": "naissance", "label": "Date de naissance", "levels": [
        {"level": "exact", "label": "date identique"}]},
]}


def _h(i: int, salt: str) -> str:
    return f"{salt}{i:031x}"


def _explanations(tmp_path: Path) -> tuple[Path, Path]:
    rows = []
    for i in range(20):
        p = "nir" if i < 10 else ("probabiliste" if i < 17 else "revue")
        nom, nom_w = ("exact", 11.5) if i % 2 else ("else", -5.5)
        rows.append({"caf_handle": _h(i, "a"), "cpam_handle": _h(i, "b"), "pass": p,
                     "prior_weight": -12.0, "nom_level": nom, "nom_weight": nom_w,
                     "nom_tf_weight": 0.25 * (i % 3), "naissance_level": "exact",
                     "naissance_weight": 12.0 + i / 10})
    df = pl.DataFrame(rows).with_columns(
        match_weight=pl.col("prior_weight") + pl.col("nom_weight") + pl.col("nom_tf_weight")
        + pl.col("naissance_weight"))
    expl, clerical = tmp_path / "expl.parquet", tmp_path / "clerical.parquet"
    df.write_parquet(expl)
    df.filter(pl.col("pass") == "revue").select(
        "caf_handle", "cpam_handle", "pass", "match_weight").write_parquet(clerical)
    return expl, clerical


def test_waterfalls_add_up_and_cover_every_clerical_pair(tmp_path: Path) -> None:
    expl, clerical = _explanations(tmp_path)
    w = waterfalls(expl, clerical, MODEL)
    assert len(w["clerical"]) == 3  # every pair of the review band, none left out
    assert {p["pass"] for p in w["sample"]} == {"nir", "probabiliste"}
    assert len(w["sample"]) == 6  # lowest, median, highest of each pass
    for p in w["sample"] + w["clerical"]:
        total = p["prior"] + sum(s["weight"] + (s["tf_weight"] or 0) for s in p["steps"])
        assert total == pytest.approx(p["match_weight"])
        assert len(p["ref"]) == 12 and "a0000" not in json.dumps(p)  # no handle travels
    nir = [p["match_weight"] for p in w["sample"] if p["pass"] == "nir"]
    all_nir = pl.read_parquet(expl).filter(pl.col("pass") == "nir")["match_weight"]
    assert nir == [all_nir.min(), all_nir.sort()[5], all_nir.max()]
    assert w["sample"][0]["steps"][0]["level"] in ("nom identique", "différent")
    assert waterfalls(expl, clerical, MODEL) == w  # deterministic
    assert sum(sum(h["counts"]) for h in w["by_pass"].values()) == 17  # links only


def test_pair_ref_is_what_the_operator_recomputes() -> None:
    import hashlib

    ref = pair_ref("aa", "bb")
    assert ref == hashlib.sha256(b"aa|bb").hexdigest()[:12]


def test_reconciliation_counts_a_household_once_per_rule(tmp_path: Path) -> None:
    targets = pl.DataFrame({
        "agence": ["caf", "caf", "caf", "cpam"],
        "foyer": ["f1", "f2", "f3", "g1"],
        "liste": ["cible", "cible", "a_verifier", "cible"],
        "regles": [["r1", "r2"], ["r1"], ["a_verifier"], ["r3"]],
    })
    path = tmp_path / "targets.parquet"
    targets.write_parquet(path)
    rc = reconciliation(path, {"cibles": {"total": 4}})
    assert rc["rows"] == rc["households"] == rc["console_total"] == 4
    assert rc["rule_rows"] == {"a_verifier": 1, "cible": 4}  # f1 counted twice
    assert rc["multi_rule"]["cible"] == 1
    assert {(r["agency"], r["list"]): r["households"] for r in rc["by_agency_list"]} == {
        ("caf", "a_verifier"): 1, ("caf", "cible"): 2, ("cpam", "cible"): 1}


def test_export_facts_carry_counts_and_names_only(tmp_path: Path) -> None:
    (tmp_path / "ingest_stats.json").write_text(json.dumps({
        "lignes_lues": 10, "lignes_acceptees": 8, "lignes_rejetees": 2, "avertissements": 1,
        "motifs": [{"action": "ligne rejetée", "colonne": "role", "motif": "valeur non reconnue",
                    "nombre": 2, "lignes": [3, 7], "exemple": "1850761169042"}],
    }), encoding="utf-8")
    terr = tmp_path / "territory.csv"
    terr.write_text("code_iris;quartier;nom_quartier\n1;QN06101M;Saint-Michel\n"
                    "2;QN06101M;Saint-Michel\n3;HQ61169A;Centre-ville\n", encoding="utf-8")
    facts = export_facts(tmp_path, terr)
    assert facts["ingestion"]["rejetees"] == 2
    assert facts["ingestion"]["motifs"] == [
        {"action": "ligne rejetée", "colonne": "role", "motif": "valeur non reconnue",
         "nombre": 2}]  # line numbers and any example value are dropped
    assert facts["quartiers"] == {"HQ61169A": "Centre-ville", "QN06101M": "Saint-Michel"}
    assert export_facts(tmp_path / "absent", None) == {}


def test_view_names_quartiers_titles_rules_and_explains_failures(tmp_path: Path) -> None:
    view = build_view(complete_facts())
    table = view["detection"]["tables"][0]
    assert "Saint-Michel" in [r["name"] for r in table["rows"]]
    assert table["titles"][table["regles"].index("rsa_sans_css")] == "Allocataire du RSA sans CSS"
    cpam = next(s for s in view["attentes"]["suites"] if s["stage"] == "cpam_export")
    failed = [r for r in cpam["rows"] if r["status"] == "échec"]
    assert len(failed) == 1 and "3 non conforme(s) sur 2\u202f876" in failed[0]["observed"]
    assert failed[0]["reason"].startswith("cpam_export · fin de CSS")
    rows = next(r for r in cpam["rows"] if r["label"].startswith("au moins une personne"))
    assert rows["observed"] == "4\u202f876 ligne(s)"
    rules = {r["id"]: r for r in view["regles"]["rows"]}
    assert rules["monoparent_sous_plafond_sans_css"]["limits"]
    rc = view["rapprochement"]
    assert (rc["cible"], rc["a_verifier"], rc["console"], rc["rule_rows"]) == (
        "57", "23", "80", "67")
    html, _ = render_report(tmp_path, complete_facts())
    text = html.read_text("utf-8")
    assert 'id="paire-77c1e0a9b2d3"' in text and "<script" not in text
    assert "valeur non reconnue (attendu : DEM, CJT, ENF, APC)" in text


def test_report_of_a_failed_validation_quotes_no_data_value(tmp_path: Path) -> None:
    """The detailed checks of a frame with a planted NIR, name and bad values reach the HTML as
    counts, ratios, column names and the suite's own domains only."""
    from test_report_validation import PLANTED_NIR, _bad_export_frame

    from pipeline.central.facts import validation_facts
    from pipeline.central.report.validation import validate

    outcome = validate("caf_detection", _bad_export_frame(), tmp_path / "run")
    facts = complete_facts()
    facts["validations"] = [validation_facts(outcome, tmp_path / "run")]
    html, js = render_report(tmp_path / "run", facts)
    text = html.read_text("utf-8") + js.read_text("utf-8")
    section = text[text.index('id="attentes"'):text.index('id="appariement"')]
    assert section.count('class="fail"') == len(outcome.critical_failures + outcome.warnings)
    assert "colonnes non autorisées : nom" in section  # a column name, not a value
    for raw in (PLANTED_NIR, "DUPONT", "XYZ", "A" * 32):
        assert raw not in text
