"""Manifests and the central gate: one test per refusal `make match` must make."""

from __future__ import annotations

import json

import polars as pl
import pytest
from trust_world import PARTIES, TODAY, edit_yaml, export_frame, make_world

from pipeline.common.errors import RefusalError
from pipeline.trust.convention import load_convention
from pipeline.trust.gate import verify_central_inputs
from pipeline.trust.manifest import manifest_path_for, verify_manifest, write_manifest

RULES = ["rsa_sans_css", "a_verifier"]


def gate(w, rules=RULES, today=TODAY, exports=None):
    return verify_central_inputs(w.convention, exports or dict(w.exports), rules, today)


def manifest(w, agency="caf"):
    return manifest_path_for(w.exports[agency], agency)


def test_gate_accepts_a_sound_run_and_reports_facts(world):
    result = gate(world, exports={a: p.parent for a, p in world.exports.items()})
    facts = json.loads(json.dumps(result.to_dict()))
    assert facts["convention_id"] == "test-conv"
    assert facts["key_fingerprint"] == world.fingerprint
    assert facts["manifests"]["caf"]["rows"] == 3
    assert facts["manifests"]["cpam"]["sha256"] == verify_manifest(
        manifest(world, "cpam"), load_convention(world.convention)).sha256
    assert facts["signatures"] == {p: "valide" for p in PARTIES}
    assert set(facts["parties"]) == {"caf", "cpam", "operateur", "detection", "ccas"}


def test_manifest_is_byte_identical_with_source_date_epoch(world, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1790000000")
    first = world.write_export("caf", export_frame("caf"))
    a = manifest_path_for(first, "caf").read_bytes()
    world.write_export("caf", export_frame("caf"))
    assert manifest_path_for(first, "caf").read_bytes() == a
    assert json.loads(a)["created_at"] == "2026-09-21T14:13:20Z"


# --- convention refusals -------------------------------------------------------------------


def test_gate_refuses_missing_convention(world):
    world.convention.unlink()
    with pytest.raises(RefusalError, match="convention introuvable"):
        gate(world)


def test_gate_refuses_unsigned_convention(tmp_path):
    w = make_world(tmp_path, sign=False)
    with pytest.raises(RefusalError, match="non signée par la partie"):
        gate(w)


def test_gate_refuses_altered_convention(world):
    edit_yaml(world.convention, purpose="Autre finalité")
    with pytest.raises(RefusalError, match="invalide : le contenu de la convention a été modifié"):
        gate(world)


def test_gate_refuses_expired_convention(world):
    with pytest.raises(RefusalError, match="expirée"):
        gate(world, today=TODAY.replace(year=2028))


def test_gate_refuses_convention_not_yet_valid(world):
    with pytest.raises(RefusalError, match="pas encore en vigueur"):
        gate(world, today=TODAY.replace(year=2025))


# --- manifest refusals ---------------------------------------------------------------------


def test_gate_refuses_unsigned_manifest(world):
    doc = json.loads(manifest(world).read_text())
    del doc["signature"]
    manifest(world).write_text(json.dumps(doc))
    with pytest.raises(RefusalError, match="manifeste de « caf » non signé"):
        gate(world)


def test_gate_refuses_manifest_with_wrong_signature(world):
    doc = json.loads(manifest(world).read_text())
    doc["rows"] = 2
    manifest(world).write_text(json.dumps(doc))
    with pytest.raises(RefusalError, match="signature du manifeste de « caf » invalide"):
        gate(world)


def test_gate_refuses_manifest_signed_by_a_key_outside_the_convention(world, tmp_path):
    from pipeline.trust.keys import generate_agency_keys

    generate_agency_keys("caf", tmp_path / "rogue")
    world.write_export("caf", export_frame("caf"), keys_dir=tmp_path / "rogue")
    with pytest.raises(RefusalError, match="signataire non reconnu"):
        gate(world)


def test_gate_refuses_manifest_from_a_non_provider(world):
    path = world.exports["caf"]
    write_manifest(path, agency="operateur", convention_id=world.convention_id,
                   key_fingerprint=world.fingerprint, keys_dir=world.keys["operateur"],
                   schema_version="1")
    m = manifest_path_for(path, "operateur")
    with pytest.raises(RefusalError, match="n'est pas une partie fournisseuse"):
        verify_manifest(m, load_convention(world.convention))


def test_gate_refuses_file_changed_after_signature(world):
    export_frame("caf").head(2).write_parquet(world.exports["caf"])
    with pytest.raises(RefusalError, match=r"SHA-256 différente.*modifié ou remplacé"):
        gate(world)


def test_gate_refuses_missing_manifest(world):
    manifest(world, "cpam").unlink()
    with pytest.raises(RefusalError, match="manifeste introuvable"):
        gate(world)


def test_gate_refuses_missing_export(world):
    with pytest.raises(RefusalError, match="non reçu de : cpam"):
        gate(world, exports={"caf": world.exports["caf"]})


# --- key, columns, rules -------------------------------------------------------------------


def test_gate_refuses_different_key_fingerprints(world):
    world.write_export("cpam", export_frame("cpam"), fingerprint="f" * 32)
    with pytest.raises(RefusalError, match=r"même clé de liaison.*caf : .*cpam : f{32}"):
        gate(world)


def test_gate_refuses_key_not_declared_by_convention(world):
    for agency in ("caf", "cpam"):
        world.write_export(agency, export_frame(agency), fingerprint="e" * 32)
    with pytest.raises(RefusalError, match="différente de celle déclarée par la convention"):
        gate(world)


def test_gate_refuses_column_not_allowed(world):
    df = export_frame("cpam").with_columns(pl.lit("DUPONT").alias("nom"))
    world.write_export("cpam", df)
    with pytest.raises(RefusalError, match=r"non autorisée.*« cpam » : nom"):
        gate(world)


def test_gate_refuses_caf_only_column_in_cpam_file(world):
    world.write_export("cpam", export_frame("cpam").with_columns(pl.lit(1.0).alias(
        "ressources_12m")))
    with pytest.raises(RefusalError, match="ressources_12m"):
        gate(world)


def test_gate_refuses_rule_not_allowed(world):
    with pytest.raises(RefusalError, match=r"règle\(s\) non autorisée\(s\).*profilage_libre"):
        gate(world, rules=["rsa_sans_css", "profilage_libre"])
