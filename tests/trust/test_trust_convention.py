"""Conventions: signatures over the canonical content, validity dates, allow-lists."""

from __future__ import annotations

import datetime as dt

import pytest
from trust_world import PARTIES, ROOT, TODAY, edit_yaml, make_world

from pipeline.agency.pseudonymise.tokens import load_catalogue
from pipeline.common.errors import RefusalError
from pipeline.trust.convention import load_convention, sign_convention, verify_convention

DEMO = ROOT / "conventions" / "demo-flers.yaml"


def test_demo_convention_is_signed_by_every_party_and_in_force():
    conv = load_convention(DEMO)
    verify_convention(conv, TODAY)
    assert conv.demo and conv.id == "demo-flers"
    assert conv.signature_status() == {p: "valide" for p in PARTIES}
    assert conv.data_providers == ["caf", "cpam"] and conv.operators == ["operateur"]
    assert conv.valid_from == dt.date(2026, 1, 1) and conv.valid_until == dt.date(2027, 12, 31)
    assert conv.retention_days == 365
    assert "a_verifier" in conv.allowed_rules and "rsa_sans_css" in conv.allowed_rules
    assert "telephone" in conv.contact_fields("caf")
    assert "telephone" not in conv.contact_fields("cpam")
    assert "nom" not in conv.allowed_fields("caf")  # names never leave, only tokens


def test_demo_convention_allows_every_token_of_tokens_yaml():
    conv = load_convention(DEMO)
    # `variants` entries expanded: one export column per position (tok_nomdel_dob_00, ...)
    tokens = load_catalogue(ROOT / "pipeline/shared/tokens.yaml").tokens
    for token in tokens:
        for agency in token["agencies"]:
            assert token["name"] in conv.allowed_fields(agency), (agency, token["name"])
    assert "tok_enfant" not in conv.allowed_fields("caf")
    assert "ressources_12m" not in conv.allowed_fields("cpam")


def test_missing_convention_refused(tmp_path):
    with pytest.raises(RefusalError, match="convention introuvable"):
        load_convention(tmp_path / "absente.yaml")


def test_convention_unsigned_by_a_party_refused(tmp_path):
    w = make_world(tmp_path, sign=False)
    for party in ("caf", "cpam", "operateur", "detection"):
        sign_convention(w.convention, party, w.keys[party])
    with pytest.raises(RefusalError, match="non signée par la partie « ccas »"):
        verify_convention(load_convention(w.convention), TODAY)


def test_convention_altered_by_one_byte_refused(tmp_path):
    w = make_world(tmp_path)
    text = w.convention.read_text("utf-8")
    assert "retention_days: 365" in text
    w.convention.write_text(text.replace("retention_days: 365", "retention_days: 366"), "utf-8")
    with pytest.raises(RefusalError, match=r"signature de la partie « caf » invalide.*modifié"):
        verify_convention(load_convention(w.convention), TODAY)


def test_convention_expired_refused(tmp_path):
    w = make_world(tmp_path)
    with pytest.raises(RefusalError, match="expirée depuis le 31/12/2027"):
        verify_convention(load_convention(w.convention), dt.date(2028, 1, 1))


def test_convention_not_yet_valid_refused(tmp_path):
    w = make_world(tmp_path)
    with pytest.raises(RefusalError, match="pas encore en vigueur"):
        verify_convention(load_convention(w.convention), dt.date(2025, 12, 31))


def test_convention_valid_on_its_first_and_last_day(tmp_path):
    conv = load_convention(make_world(tmp_path).convention)
    verify_convention(conv, dt.date(2026, 1, 1))
    verify_convention(conv, dt.date(2027, 12, 31))


def test_party_cannot_sign_with_another_key(tmp_path):
    from pipeline.trust.keys import generate_agency_keys

    w = make_world(tmp_path, sign=False)
    generate_agency_keys("caf", tmp_path / "impostor")
    with pytest.raises(RefusalError, match="n'est pas celle déclarée pour « caf »"):
        sign_convention(w.convention, "caf", tmp_path / "impostor")
    assert load_convention(w.convention).signatures == {}


def test_signature_from_an_edited_copy_does_not_transfer(tmp_path):
    w = make_world(tmp_path)
    edit_yaml(w.convention, rules=["rsa_sans_css", "regle_inventee"])
    status = load_convention(w.convention).signature_status()
    assert set(status.values()) == {"invalide"}


def test_malformed_convention_refused_with_reason(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("id: x\ndemo: false\n", "utf-8")
    with pytest.raises(RefusalError, match="champ obligatoire « parties » absent"):
        load_convention(path)


def test_convention_letting_a_raw_identifier_leave_is_refused(tmp_path):
    w = make_world(tmp_path)
    conv = load_convention(w.convention)
    fields = {**conv.content["fields"], "cpam": [*conv.allowed_fields("cpam"), "nir", "nom"]}
    edit_yaml(w.convention, fields=fields)
    with pytest.raises(RefusalError, match="identifiant en clair : nir, nom"):
        load_convention(w.convention)


def test_duplicate_key_refused_even_if_signature_would_hold(tmp_path):
    w = make_world(tmp_path)
    text = w.convention.read_text("utf-8")
    # a reader would see 3650 first; the parser would keep the signed 365
    w.convention.write_text(text.replace("retention_days: 365",
                                         "retention_days: 3650\nretention_days: 365"), "utf-8")
    with pytest.raises(RefusalError, match=r"ligne \d+ : convention illisible.*en double"):
        load_convention(w.convention)


def _spec_fields(drop_tokens: str | None = None, drop: tuple[str, ...] = ()) -> dict:
    from pipeline.trust.demo import demo_spec

    fields = demo_spec()["fields"]
    return {a: [f for f in names if f not in drop
                and not (a == drop_tokens and f.startswith("tok_"))]
            for a, names in fields.items()}


def test_convention_without_tokens_refused_by_verify_and_pseudonymise(tmp_path):
    """The documented template once listed no token: pseudonymise dropped every token and the
    central step failed. Both `convention verify` and `pseudonymise` now refuse it up front."""
    from typer.testing import CliRunner

    from pipeline.agency.pseudonymise.core import load_materials
    from pipeline.cli import app

    w = make_world(tmp_path, spec_changes={"fields": _spec_fields(drop_tokens="cpam")})
    conv = load_convention(w.convention)
    assert conv.signature_status() == {p: "valide" for p in PARTIES}
    message = "n'autorise aucun jeton pour « cpam » : l'appariement central est impossible"
    with pytest.raises(RefusalError, match=message):
        verify_convention(conv, TODAY)
    with pytest.raises(RefusalError, match=message):
        load_materials(w.keys["cpam"], w.convention, "cpam")
    res = CliRunner().invoke(app, ["convention", "verify", str(w.convention),
                                   "--today", TODAY.isoformat()])
    assert res.exit_code != 0
    assert message in res.output + str(res.exception)


def test_convention_missing_a_central_column_refused(tmp_path):
    w = make_world(tmp_path, spec_changes={"fields": _spec_fields(drop=("tok_nom_dob",)),
                                           "rules": []})
    with pytest.raises(RefusalError) as err:
        verify_convention(load_convention(w.convention), TODAY)
    text = str(err.value)
    assert "pour « caf » : tok_nom_dob" in text and "pour « cpam » : tok_nom_dob" in text
    assert "aucune règle de détection" in text


def test_complete_convention_is_ready(tmp_path):
    from pipeline.trust.convention import central_readiness_errors, central_required_columns

    w = make_world(tmp_path)
    assert central_readiness_errors(load_convention(w.convention)) == []
    assert {"tok_nir", "tok_nom_dob", "handle"} <= set(central_required_columns("caf"))
    required = central_required_columns("cpam")
    assert "c_css_active" in required and "statut_css" not in required  # contract 6


def test_real_convention_on_demo_signing_keys_refused(tmp_path):
    """Demo keys are published: a non-demo convention may neither declare nor be signed by one."""
    from pipeline.trust.convention import create_convention
    from pipeline.trust.demo import DEMO_SEED, demo_spec
    from pipeline.trust.keys import generate_agency_keys

    keys = {}
    for party in ("caf", "cpam", "operateur", "detection", "ccas"):
        keys[party] = tmp_path / party
        generate_agency_keys(party, keys[party], seed=DEMO_SEED)
    conv_path = create_convention({**demo_spec(), "id": "vraie", "demo": False}, keys,
                                  tmp_path / "vraie.yaml")
    with pytest.raises(RefusalError, match=r"clé de DÉMONSTRATION .* refusée pour signer"):
        sign_convention(conv_path, "caf", keys["caf"])
    with pytest.raises(RefusalError, match="signature de DÉMONSTRATION pour caf, ccas, cpam"):
        verify_convention(load_convention(conv_path), TODAY)
    # the demo convention itself stays valid with the same keys
    verify_convention(load_convention(DEMO), TODAY)
