"""The YAML catalogues agree with each other: every token a comparison reads is declared in
tokens.yaml for the side that reads it and allowed by the demo convention; every declared token is
used by the linkage; every feature a rule reads is declared, produced and allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.agency.pseudonymise.tokens import load_catalogue as load_tokens
from pipeline.central.detect.predicates import load_checked_rules
from pipeline.common.errors import InputError
from pipeline.shared import separation
from pipeline.shared.features import load_catalogue as load_features
from pipeline.shared.linkage_model import load_config
from pipeline.shared.rules import default_rules_path, load_rules
from pipeline.trust.convention import load_convention

ROOT = Path(__file__).resolve().parents[2]
SIDES = {"l": "caf", "r": "cpam"}


@pytest.fixture(scope="module")
def convention():
    return load_convention(ROOT / "conventions" / "demo-flers.yaml")


@pytest.mark.parametrize("alias", sorted(SIDES))
def test_every_token_a_comparison_reads_is_exported_by_its_side(alias, convention) -> None:
    agency = SIDES[alias]
    used = {c for c in load_config().referenced_columns(alias) if c.startswith("tok_")}
    assert used
    assert sorted(used - set(load_tokens().names(agency))) == []
    assert sorted(used - set(convention.allowed_fields(agency))) == []


@pytest.mark.parametrize("agency", sorted(SIDES.values()))
def test_every_exported_token_is_read_by_the_linkage(agency, convention) -> None:
    alias = {a: al for al, a in SIDES.items()}[agency]
    used = load_config().referenced_columns(alias)
    assert sorted(set(load_tokens().names(agency)) - used) == []
    exported = {f for f in convention.allowed_fields(agency) if f.startswith("tok_")}
    assert sorted(exported - set(load_tokens().names(agency))) == []


def test_every_rule_feature_is_declared_produced_and_allowed(convention) -> None:
    """Each feature a rule reads is in features.yaml, produced by its agency, and reaches the
    detecting operator through the convention (contract 6): as a column of the agency's detection
    file, or through the columns separation.CARRIED_BY names, on the section that lists them.
    An optional feature (an extract column some CAF lack) may be absent: the rule reads null."""
    catalogue = load_features()
    reached = 0
    for rule in load_rules():
        assert set(rule.features) <= set(catalogue.features), rule.id
        for name in rule.features:
            feature = catalogue.features[name]
            assert name in catalogue.names(feature.agence), (rule.id, name)
            if feature.optionnel:
                continue
            if name in convention.detection_fields(feature.agence):
                reached += 1
                continue
            assert name in separation.CARRIED_BY, (rule.id, name)
            section, columns = separation.CARRIED_BY[name]
            listed = (convention.content.get(section) or {}).get(feature.agence) or []
            assert set(columns) <= set(listed), (rule.id, name, section)
            # and never as a feature column to the linking operator
            assert name == "adulte" or name not in convention.allowed_fields(feature.agence)
            reached += 1
    assert reached > 0


def test_a_typo_in_a_predicate_names_the_rule_when_the_catalogue_loads(tmp_path) -> None:
    text = default_rules_path().read_text(encoding="utf-8")
    assert "type_foyer = 'monoparent'" in text
    bad = tmp_path / "rules.yaml"
    bad.write_text(text.replace("type_foyer = 'monoparent'", "typ_foyer = 'monoparent'", 1),
                   encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_checked_rules(bad)
    message = str(err.value)
    assert "règle monoparent_sous_plafond_sans_css : prédicat invalide" in message
    assert "typ_foyer" in message


def test_shared_conditions_are_declared_once_and_expanded(tmp_path) -> None:
    """`{jumeaux}` / `{nir_concordant}` are written once under `conditions:` and expanded in
    every pass that names them; a pass naming an undeclared condition is refused at load."""
    from pipeline.shared.linkage_model import DEFAULT_CONFIG, load_config

    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    guard = "l.tok_nomseul_dob_sexe IS NULL"
    assert text.count(guard) == 1
    twin = [p.name for p in load_config().passes if guard in p.consistent]
    assert {"nom_dob", "noms_inverses", "nom_faute", "foyer"} <= set(twin)
    assert all("{" not in p.consistent for p in load_config().passes)
    bad = tmp_path / "comparisons.yaml"
    bad.write_text(text.replace("{jumeaux}", "{jumeau}", 1), encoding="utf-8")
    with pytest.raises(InputError, match="condition inconnue « jumeau »"):
        load_config(bad)
