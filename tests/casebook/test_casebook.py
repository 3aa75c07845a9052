"""The legal case book (casebook.yaml, written from the texts) through the agency-side features
(detect_builders.Builder.write runs pipeline/shared/features.py) and the real central detection."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "detect"))
from casebook import DOC, LABELS, load_book, render
from detect_builders import Builder

from pipeline.central.detect import detect
from pipeline.shared.rules import load_rules

BOOK = load_book()
CASES = BOOK["cas"]
CAF_RULES = {r.id for r in load_rules() if r.agence == "caf"}
LINKED = {"adultes": "adults", "aucun": "none", "enfants": "children"}


def test_book_is_complete_and_well_formed() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) >= 40 and len(set(ids)) == len(ids)
    assert set(LABELS) == CAF_RULES, "the rendered table must show every CAF-side rule"
    for c in CASES:
        assert set(c["attendu"]) <= CAF_RULES, c["id"]
        assert c["calcul"].strip() and c["sources"], c["id"]
        assert set(c["sources"]) <= set(BOOK["sources"]), c["id"]


@pytest.fixture(scope="module")
def detected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    tmp = tmp_path_factory.mktemp("casebook")
    b = Builder(BOOK["date_reference"])
    foyers = {}
    for c in CASES:
        css = c.get("css") or {}
        opts = dict(c.get("options") or {})
        opposed = opts.pop("opposition", None)
        foyers[c["id"]] = b.foyer(
            [tuple(m) for m in c["membres"]],
            ressources=float(c["ressources_12m"]),
            prestations=tuple(c.get("prestations") or ()),
            situation=c.get("situation", "ISOLE"),
            commune=str(c.get("commune", "61169")),
            css=css.get("statut"),
            css_debut=css.get("debut"),
            css_fin=css.get("fin"),
            linked=LINKED[c.get("cpam", "adultes")],
            opposed_member=opposed,
            **opts,
        )["foyer"]
    detect(*b.write(tmp), tmp / "out")
    targets = pl.read_parquet(tmp / "out" / "targets.parquet").filter(pl.col("agence") == "caf")
    by_foyer = {row["foyer"]: row for row in targets.iter_rows(named=True)}
    return {cid: by_foyer.get(f, {"regles": [], "motifs": []}) for cid, f in foyers.items()}


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case_through_the_real_detection(detected: dict, case: dict) -> None:
    row = detected[case["id"]]
    assert set(row["regles"]) == set(case["attendu"]), case["calcul"]
    for fragment in case.get("motif_contient") or []:
        assert fragment in row["motifs"][0], (fragment, row["motifs"][0])


def test_reference_date_is_a_date() -> None:
    assert isinstance(BOOK["date_reference"], dt.date)


def test_rendered_document_is_up_to_date() -> None:
    assert DOC.exists(), "run: python tests/casebook/casebook.py"
    assert DOC.read_text(encoding="utf-8") == render(BOOK), "run: python tests/casebook/casebook.py"
