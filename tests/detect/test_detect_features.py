"""The feature catalogue (pipeline/shared/features.yaml): computed at source, read centrally,
declared by the rules, allowed by the convention, checked by the export suites — one list."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import polars as pl
import pytest
import yaml

from pipeline.shared import separation
from pipeline.shared.attributes import STRUCTURE
from pipeline.shared.features import cpam_features, load_catalogue
from pipeline.shared.rules import default_rules_path, load_rules, required_features
from pipeline.shared.suite_spec import load_suite
from pipeline.trust.convention import load_convention

R = dt.date(2025, 9, 30)
CAT = load_catalogue()


def _status(css: str | None, debut: dt.date | None, fin: dt.date | None,
            role: str = "ASSURE") -> tuple[str, bool]:
    row = cpam_features(pl.DataFrame(
        {"css": [css], "css_debut": [debut], "css_fin": [fin], "date_reference": [R],
         "role": [role]},
        schema={"css": pl.String, "css_debut": pl.Date, "css_fin": pl.Date,
                "date_reference": pl.Date, "role": pl.String}))
    return row["statut_css"][0], row["css_gratuite_en_cours"][0]


@pytest.mark.parametrize(("css", "debut", "fin", "expected"), [
    ("GRATUITE", dt.date(2025, 1, 1), dt.date(2025, 11, 29), ("fin_proche", True)),  # R + 60
    ("GRATUITE", dt.date(2025, 1, 1), dt.date(2025, 11, 30), ("en_cours", True)),    # R + 61
    ("PARTICIPATION", dt.date(2025, 1, 1), R, ("fin_proche", False)),                # ends on R
    ("PARTICIPATION", dt.date(2024, 1, 1), dt.date(2025, 9, 29), ("terminee_recente", False)),
    ("GRATUITE", dt.date(2024, 1, 1), dt.date(2024, 9, 30), ("terminee_recente", False)),  # -365
    ("GRATUITE", dt.date(2023, 1, 1), dt.date(2024, 9, 29), ("aucune", False)),            # -366
    ("NON", None, None, ("aucune", False)),
    ("INCONNU", dt.date(2025, 1, 1), dt.date(2025, 12, 31), ("a_verifier", False)),
    (None, None, None, ("a_verifier", False)),
    ("GRATUITE", dt.date(2025, 10, 1), dt.date(2026, 9, 30), ("aucune", False)),  # not yet
])
def test_cpam_status_at_the_reference_date(css, debut, fin, expected) -> None:
    assert _status(css, debut, fin) == expected


def test_free_css_flag_is_on_the_insured_persons_row_only() -> None:
    """Contract 3: no role leaves the CPAM; the reverse rule reads the insured person's flag."""
    active = ("GRATUITE", dt.date(2025, 1, 1), dt.date(2026, 6, 30))
    assert _status(*active) == ("en_cours", True)
    assert _status(*active, role="ENFANT") == ("en_cours", False)


def test_every_rule_declares_known_features_and_every_feature_is_needed() -> None:
    needed = required_features()  # raises on an unknown or an unneeded feature
    assert set(needed) == set(CAT.features)
    for rule in load_rules():
        assert rule.features, rule.id


def test_rule_predicates_read_only_feature_derived_columns() -> None:
    """No predicate may name a figure the centre no longer has."""
    figures = {"ressources_12m", "ressources_css", "plafond_gratuite", "plafond_participation",
               "css", "css_fin", "css_debut", "css_fin_active", "css_fin_passee", "nb_enf", "n",
               "situation_familiale", "rang_foyer", "mineur", "age", "nb_personnes_dossier"}
    for rule in load_rules():
        identifiers = set(re.findall(r"[a-z_][a-z0-9_]*", rule.predicat.lower()))
        assert not identifiers & figures, (rule.id, identifiers & figures)


def test_convention_allows_exactly_structure_and_the_needed_features() -> None:
    """Contract 6: the linking operator gets no feature (only the CAF's adult flag besides the
    structure, tokens and masked columns); the detecting operator gets exactly the detection
    file's columns; no role, sex, NIR status, commune or quartier goes to either."""
    conv = load_convention(Path(__file__).resolve().parents[2] / "conventions" / "demo-flers.yaml")
    for agency in ("caf", "cpam"):
        benefits = agency == "caf"
        # the masked statuses (pads) or factors are uniform residues, not attributes
        allowed = [c for c in conv.allowed_fields(agency)
                   if not c.startswith(("tok_", separation.PAD_PREFIX, separation.FACTOR_PREFIX))]
        assert set(allowed) == {*STRUCTURE, *(separation.LINKER_ATTRIBUTES if benefits else ())}
        assert set(separation.linker_fields(benefits)) <= set(conv.allowed_fields(agency))
        assert not (set(allowed) & set(CAT.features)) - set(separation.LINKER_ATTRIBUTES)
        assert conv.detection_fields(agency) == separation.detection_fields(benefits)
        for fields in (allowed, conv.detection_fields(agency)):
            assert not set(fields) & {"role", "sexe", "nir_statut", "code_commune", "quartier"}
    mandatory = [f for f in CAT.names("caf") if not CAT.features[f].optionnel]
    assert set(mandatory) - {"adulte", "a_ppa"} <= set(conv.detection_fields("caf"))


def test_detection_suites_agree_with_the_catalogue() -> None:
    """The detection files' suites hold the features' value sets, the catalogue's `valeurs`."""
    checked = 0
    for agency in ("caf", "cpam"):
        suite = load_suite(f"{agency}_detection")
        allowed = next(e["allowed_columns"] for e in suite.expectations
                       if e["id"] == "colonnes_autorisees")
        assert set(allowed) == set(separation.detection_fields(agency == "caf"))
        for e in suite.expectations:
            col = e.get("column")
            if e["type"] == "expect_column_values_to_be_in_set" and col in CAT.features:
                assert set(e["kwargs"]["value_set"]) == set(CAT.features[col].valeurs), col
                checked += 1
    assert checked == 2  # type_foyer, position_plafond_css


def test_rules_yaml_windows_are_not_duplicated() -> None:
    """The renewal windows live in features.yaml only (the CPAM computes statut_css with them)."""
    raw = yaml.safe_load(default_rules_path().read_text(encoding="utf-8"))
    renew = next(r for r in raw["regles"] if r["id"] == "css_non_renouvelee")
    assert not renew.get("parametres")
    assert CAT.parametres == {"fenetre_fin_proche_jours": 60,
                              "fenetre_terminee_recente_jours": 365}
