"""The agencies' files for the detecting operator (pipeline/shared/detector_files.py,
docs/SEPARATION.md): one row per household, values coarsened to what the rules read, nothing
that groups the CPAM persons by CAF household."""

from __future__ import annotations

import datetime as dt

import polars as pl

from pipeline.shared import detector_files

REF = dt.date(2026, 3, 2)


def caf_export() -> pl.DataFrame:
    rows = [
        # handle, foyer, opposition, type_foyer, adulte, position, a_rsa, a_aah, a_ppa, taux
        ("h2", "A", False, "personne_seule", True, "au_dessus", False, True, False, True),
        ("h3", "B", False, "personne_seule", True, "au_dessus", False, True, True, True),
        ("h4", "C", False, "personne_seule", True, "sous_plafond_gratuite", True, False,
         False, None),
        ("h6", "D", False, "monoparent", True, "sous_plafond_gratuite", False, False, True,
         None),
        ("h5", "D", False, "monoparent", False, "sous_plafond_gratuite", False, False, True,
         None),
        ("h8", "E", True, None, None, None, None, None, None, None),
        ("h7", "E", True, None, None, None, None, None, None, None),
    ]
    cols = ["handle", "foyer", "opposition", "type_foyer", "adulte", "position_plafond_css",
            "a_rsa", "a_aah", "a_ppa", "aah_taux_plein"]
    return pl.DataFrame(rows, schema=cols, orient="row").with_columns(
        date_reference=pl.lit(REF))


def test_household_file_keeps_what_the_rules_read_and_no_size() -> None:
    got = detector_files.household_rows(caf_export())
    assert got["foyer"].to_list() == ["A", "B", "C", "D", "E"]  # one row per household
    assert "a_ppa" not in got.columns and "adulte" not in got.columns
    by = {r["foyer"]: r for r in got.iter_rows(named=True)}
    # a lone AAH recipient without PPA: aah_isole reads personne_seule and the rate
    assert by["A"]["type_foyer"] == "personne_seule" and by["A"]["aah_taux_plein"] is True
    # with PPA (aah_isole cannot hold) or without AAH, a lone person is « autre »
    assert by["B"]["type_foyer"] == "autre" and by["B"]["aah_taux_plein"] is None
    assert by["C"]["type_foyer"] == "autre" and by["C"]["a_rsa"] is True
    assert by["D"]["type_foyer"] == "monoparent" and by["D"]["handle"] == "h5"  # first handle
    assert by["E"]["opposition"] is True
    assert all(by["E"][c] is None for c in detector_files.FEATURES)
    assert got["date_reference"].to_list() == [REF] * 5


def test_caf_minima_gives_d_no_caf_household() -> None:
    links = pl.DataFrame({"caf_handle": ["h4", "h6", "h5", "h7", "h2"],
                          "cpam_handle": ["p1", "p2", "p3", "p4", "p5"]})
    got = detector_files.caf_minima(caf_export(), links)
    assert got.columns == ["cpam_handle", "a_minima"]
    assert got.rows() == [("p1", True), ("p2", True), ("p3", True), ("p4", False),
                          ("p5", False)]


def test_insured_rows_are_the_reverse_rule_perimeter_with_their_group_opposition() -> None:
    cpam = pl.DataFrame({"handle": ["q1", "q2", "q3", "q4", "q5"],
                         "foyer": ["G1", "G1", "G2", "G3", "G3"],
                         "css_gratuite_en_cours": [True, False, None, True, None],
                         "opposition": [False, False, True, None, True]})
    assert detector_files.insured_rows(cpam).rows() == [("q1", "G1", False),
                                                        ("q4", "G3", True)]
