"""render_report(): self-contained French HTML + JSON, robust to missing parts, loud warnings."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_fixtures import complete_facts

from pipeline.central.report.facts import SECTION_IDS
from pipeline.central.report.render import build_view, render_report
from pipeline.common.errors import PipelineError


class _Collector(HTMLParser):
    """Every tag with its attributes, and the ids, of a rendered page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def parse(html: str) -> _Collector:
    c = _Collector()
    c.feed(html)
    return c


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict, Path]:
    run = tmp_path_factory.mktemp("run")
    html_path, json_path = render_report(run, complete_facts())
    assert html_path == run / "report.html" and json_path == run / "report.json"
    return html_path.read_text("utf-8"), json.loads(json_path.read_text("utf-8")), run


def test_every_section_is_present_by_id(rendered) -> None:
    html, _, _ = rendered
    ids = {a.get("id") for _, a in parse(html).tags}
    assert set(SECTION_IDS) <= ids


def test_page_is_self_contained(rendered) -> None:
    html, _, _ = rendered
    tags = parse(html).tags
    assert not [t for t, _ in tags if t in ("script", "link", "img", "iframe", "object", "embed")]
    for tag, attrs in tags:
        for name in ("src", "href", "action", "srcset", "data"):
            value = attrs.get(name)
            if value is not None:
                assert value.startswith("#"), (tag, name, value)  # in-page anchors only
    assert not re.search(r"url\(|@import|https?://(?!www\.w3\.org/2000/svg)", html)
    assert "Content-Security-Policy" in html and "default-src 'none'" in html


def test_french_content_and_figures(rendered) -> None:
    html, _, _ = rendered
    assert '<html lang="fr">' in html
    for text in ("Convention et signatures", "Qualité des données", "Entonnoir par passe",
                 "revue manuelle", "Journal d'audit", "Barème CSS appliqué", "demo-flers-2025",
                 "10\u202f339 €", "4\u202f598", "94,3\u00a0%"):
        assert text in html, text
    assert html.count("<svg") >= 3  # funnel, histogram, per-suite bars
    # Suppressed cells are shown as such, never as a number.
    assert re.search(r'<td class="sup"[^>]*>&lt; 11</td>', html)
    assert re.search(r'<td class="sup"[^>]*>s</td>', html)


def test_json_holds_the_same_facts(rendered) -> None:
    _, doc, _ = rendered
    assert doc["facts"]["gate"]["convention_id"] == "demo-flers-2025"
    rep = doc["report"]
    assert rep["appariement"]["links_total"] == "4\u202f598"
    assert rep["audit"]["ok"] is True
    assert rep["verdict"] == "reserves"  # one validation warning, nothing critical
    assert not any("<svg" in json.dumps(v) for v in rep.values())


def test_output_is_byte_identical_on_rerun(rendered, tmp_path: Path) -> None:
    _, _, run = rendered
    render_report(tmp_path, complete_facts())
    for name in ("report.html", "report.json"):
        assert (tmp_path / name).read_bytes() == (run / name).read_bytes()


@pytest.mark.parametrize("missing", ["run", "gate", "validations", "linkage", "detection",
                                     "leakage", "audit", "parameters", "versions", "warnings"])
def test_each_missing_part_shows_non_disponible(missing: str, tmp_path: Path) -> None:
    facts = complete_facts()
    del facts[missing]
    html_path, _ = render_report(tmp_path, facts)
    html = html_path.read_text("utf-8")
    assert set(SECTION_IDS) <= {a.get("id") for _, a in parse(html).tags}
    if missing not in ("run", "warnings", "parameters"):
        assert "Non disponible" in html


def test_empty_and_malformed_facts_never_crash(tmp_path: Path) -> None:
    render_report(tmp_path / "empty", {})
    facts = complete_facts()
    facts["linkage"]["funnel"] = "garbage"
    facts["detection"] = {"cells": [{"no": "keys"}]}
    facts["gate"]["manifests"] = 42
    view = build_view(facts)
    assert view["detection"]["available"] is False
    assert view["manifestes"]["available"] is False
    render_report(tmp_path / "bad", facts)


def test_unconfirmed_css_table_is_a_loud_warning() -> None:
    facts = complete_facts()
    facts["parameters"] = None
    facts["run"]["reference_date"] = "2026-05-01"
    view = build_view(facts)
    first = view["alertes"][0]
    assert first["level"] == "critique"
    assert "Aucun barème CSS confirmé pour la date de référence 2026-05-01" in first["text"]
    assert view["verdict"] == "anomalies"
    facts = complete_facts()
    facts["parameters"]["confirmed"] = False
    assert build_view(facts)["verdict"] == "anomalies"


def test_broken_audit_signature_and_leak_are_reported() -> None:
    facts = complete_facts()
    facts["audit"] = {"ok": False, "entries": 3, "head": "ab" * 32, "broken_line": 4,
                      "reason": "contenu modifié"}
    facts["gate"]["signatures"]["cpam"] = "absente"
    facts["leakage"][0]["scan_ok"] = False
    facts["leakage"][1]["frequency_leakage"] = 0.2
    texts = [a["text"] for a in build_view(facts)["alertes"]]
    assert any("Journal d'audit rompu à la ligne 4" in t for t in texts)
    assert any("CPAM de l'Orne — signature ABSENTE" in t for t in texts)
    assert any("Export CAF" in t and "identifiants" in t for t in texts)
    assert any("Export CPAM : fuite par fréquence" in t for t in texts)


@pytest.mark.parametrize("leak", ["1850761169042", "285076116904217", "06 12 34 56 78"])
def test_refuses_to_publish_identifier_looking_values(leak: str, tmp_path: Path) -> None:
    facts = complete_facts()
    facts["warnings"] = [f"valeur {leak}"]
    with pytest.raises(PipelineError, match="rapport non écrit"):
        render_report(tmp_path, facts)
    assert not (tmp_path / "report.html").exists()
    assert not (tmp_path / "report.json").exists()


def test_report_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pipeline.cli import app

    facts = tmp_path / "facts.json"
    facts.write_text(json.dumps(complete_facts()), encoding="utf-8")
    res = CliRunner().invoke(app, ["report", str(tmp_path / "run"), "--facts", str(facts)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "run" / "report.html").is_file()
    facts.write_text("{ pas du json", encoding="utf-8")
    res = CliRunner().invoke(app, ["report", str(tmp_path / "run2"), "--facts", str(facts)])
    assert res.exit_code != 0
    assert not (tmp_path / "run2" / "report.html").exists()


def test_small_household_counts_are_masked(tmp_path: Path) -> None:
    facts = complete_facts()
    facts["detection"]["excluded_opposition"] = 2
    facts["detection"]["by_rule"]["aah_isole"] = 3
    html_path, json_path = render_report(tmp_path, facts)
    doc = json.loads(json_path.read_text("utf-8"))
    assert doc["report"]["detection"]["excluded_opposition"] == "< 11"
    assert doc["facts"]["detection"]["excluded_opposition"] == "< 11"
    assert doc["facts"]["detection"]["by_rule"]["aah_isole"] == "< 11"
    assert doc["facts"]["detection"]["by_rule"]["rsa_sans_css"] == 18
    assert '<div class="v">&lt; 11</div><div class="l">foyers exclus' in html_path.read_text()
