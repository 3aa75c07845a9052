"""Agency keys, the linkage-key ceremony, fingerprints and the demo key material."""

from __future__ import annotations

import filecmp
import json
import os
import stat
from pathlib import Path

import pytest
from trust_world import ROOT, make_world

from pipeline.common.errors import PipelineError, RefusalError
from pipeline.trust.convention import load_convention
from pipeline.trust.demo import build, install_demo_keys
from pipeline.trust.keys import (
    create_linkage_key,
    fingerprint,
    generate_agency_keys,
    linkage_key_path,
    load_linkage_key,
    load_private_ed25519,
    load_private_x25519,
    private_key_path,
    public_key_path,
    unwrap_linkage_key,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_private_keys_are_owner_only_and_public_keys_readable(tmp_path):
    keys = tmp_path / "caf"
    generate_agency_keys("caf", keys)
    for algorithm in ("ed25519", "x25519"):
        assert mode(private_key_path(keys, "caf", algorithm)) == 0o600
        assert mode(public_key_path(keys, "caf", algorithm)) == 0o644
    assert mode(keys) == 0o700 and mode(keys / "private") == 0o700
    assert json.loads(private_key_path(keys, "caf", "ed25519").read_text())["demo"] is False


def test_private_key_readable_by_others_is_refused(tmp_path):
    keys = tmp_path / "caf"
    generate_agency_keys("caf", keys)
    os.chmod(private_key_path(keys, "caf", "ed25519"), 0o644)
    with pytest.raises(PipelineError, match="trop ouvertes"):
        load_private_ed25519(keys, "caf")
    os.chmod(private_key_path(keys, "caf", "x25519"), 0o640)
    with pytest.raises(PipelineError, match="trop ouvertes"):
        load_private_x25519(keys)


def test_ceremony_gives_both_agencies_the_same_key_and_operator_nothing(tmp_path):
    w = make_world(tmp_path)
    caf = load_linkage_key(w.keys["caf"], w.convention_id, convention=w.convention)
    cpam = load_linkage_key(w.keys["cpam"], w.convention_id, convention=w.convention)
    assert caf.secret == cpam.secret and len(caf.secret) == 32
    assert caf.fingerprint == cpam.fingerprint == w.fingerprint == fingerprint(caf.secret)
    assert caf.secret.hex()[:32] != caf.fingerprint
    assert not (w.keys["operateur"] / "linkage").exists()
    assert sorted(p.name for p in (tmp_path / "wrapped").iterdir()) == [
        "test-conv.caf.wrapped.json", "test-conv.cpam.wrapped.json"]
    key_file = linkage_key_path(w.keys["caf"], w.convention_id)
    assert mode(key_file) == 0o600 and mode(key_file.parent) == 0o700
    # the key never appears in the wrapped files
    for wrapped in (tmp_path / "wrapped").iterdir():
        assert caf.secret.hex() not in wrapped.read_text()


def test_wrapped_key_cannot_be_unwrapped_by_the_wrong_agency(tmp_path):
    w = make_world(tmp_path)
    wrapped = tmp_path / "wrapped" / "test-conv.caf.wrapped.json"
    with pytest.raises(RefusalError, match="destinée à « caf », pas à « cpam »"):
        unwrap_linkage_key(wrapped, w.keys["cpam"])
    # an impostor holding keys *named* caf but not the CAF's private key cannot decrypt either
    impostor = tmp_path / "impostor"
    generate_agency_keys("caf", impostor)
    with pytest.raises(RefusalError, match="impossible de déchiffrer"):
        unwrap_linkage_key(wrapped, impostor)
    assert not (impostor / "linkage").exists()


def test_tampered_wrapped_key_is_refused(tmp_path):
    w = make_world(tmp_path)
    wrapped = tmp_path / "wrapped" / "test-conv.cpam.wrapped.json"
    doc = json.loads(wrapped.read_text())
    doc["demo"] = True
    wrapped.write_text(json.dumps(doc))
    with pytest.raises(RefusalError, match="signature du créateur invalide"):
        unwrap_linkage_key(wrapped, w.keys["cpam"])


def test_new_convention_gives_a_new_key_and_fingerprint(tmp_path):
    a = make_world(tmp_path / "a", "conv-a")
    keys = a.keys
    fp_b = create_linkage_key("conv-b", keys["caf"], {"cpam": keys["cpam"]}, tmp_path / "b")
    assert fp_b != a.fingerprint
    unwrap_linkage_key(tmp_path / "b" / "conv-b.cpam.wrapped.json", keys["cpam"])
    ka = load_linkage_key(keys["cpam"], "conv-a", convention=a.convention)
    kb = load_linkage_key(keys["cpam"], "conv-b", convention=None)
    assert ka.secret != kb.secret and kb.fingerprint == fp_b
    assert ka.subkey("tok_nir") != kb.subkey("tok_nir")
    assert ka.subkey("tok_nir") != ka.subkey("tok_nom_dob")


def test_wrong_key_refused_by_convention_fingerprint(tmp_path):
    w = make_world(tmp_path)
    other = tmp_path / "other"
    create_linkage_key(w.convention_id, w.keys["caf"], {"cpam": w.keys["cpam"]}, other)
    unwrap_linkage_key(other / "test-conv.cpam.wrapped.json", w.keys["cpam"])  # overwrites K
    with pytest.raises(RefusalError, match="mauvaise clé"):
        load_linkage_key(w.keys["cpam"], w.convention_id, convention=w.convention)


def test_demo_key_refused_by_a_non_demo_convention(tmp_path):
    keys = tmp_path / "caf-keys"
    install_demo_keys("caf", keys)
    real = make_world(tmp_path / "real", "demo-flers", demo=False,
                      spec_changes={"linkage_key_fingerprint": None})
    with pytest.raises(RefusalError, match="DÉMONSTRATION refusée"):
        load_linkage_key(keys, "demo-flers", convention=real.convention)
    key = load_linkage_key(keys, "demo-flers", convention=ROOT / "conventions" / "demo-flers.yaml")
    assert key.demo and key.fingerprint == load_convention(
        ROOT / "conventions" / "demo-flers.yaml").linkage_key_fingerprint


def test_install_demo_keys_is_owner_only_and_matches_between_agencies(tmp_path):
    for agency in ("caf", "cpam"):
        install_demo_keys(agency, tmp_path / agency)
        assert mode(tmp_path / agency) == 0o700
        for f in (tmp_path / agency / "private").iterdir():
            assert mode(f) == 0o600
    conv = ROOT / "conventions" / "demo-flers.yaml"
    caf = load_linkage_key(tmp_path / "caf", "demo-flers", convention=conv)
    cpam = load_linkage_key(tmp_path / "cpam", "demo-flers", convention=conv)
    assert caf.secret == cpam.secret


def test_demo_material_regenerates_byte_identical(tmp_path):
    fp = build(tmp_path / "keys", tmp_path / "demo-flers.yaml")
    committed = ROOT / "sample_data" / "keys"
    cmp = filecmp.dircmp(committed, tmp_path / "keys")
    assert fp == load_convention(ROOT / "conventions" / "demo-flers.yaml").linkage_key_fingerprint

    def same(d: filecmp.dircmp) -> bool:
        _, mismatch, errors = filecmp.cmpfiles(d.left, d.right, d.common_files, shallow=False)
        return not (d.left_only or d.right_only or mismatch or errors) and all(
            same(sub) for sub in d.subdirs.values())

    assert same(cmp)
    assert (tmp_path / "demo-flers.yaml").read_bytes() == (
        ROOT / "conventions" / "demo-flers.yaml").read_bytes()
    for f in committed.rglob("*.key.json"):
        doc = json.loads(f.read_text())
        assert doc["demo"] is True and "DEMO ONLY" in doc["warning"]


def test_existing_long_term_keys_are_not_overwritten(tmp_path):
    keys = tmp_path / "caf"
    generate_agency_keys("caf", keys)
    before = private_key_path(keys, "caf", "ed25519").read_bytes()
    with pytest.raises(PipelineError, match="existent déjà"):
        generate_agency_keys("caf", keys)
    assert private_key_path(keys, "caf", "ed25519").read_bytes() == before
    generate_agency_keys("caf", keys, overwrite=True)
    assert private_key_path(keys, "caf", "ed25519").read_bytes() != before


def test_demo_keys_never_replace_real_keys(tmp_path):
    keys = tmp_path / "caf"
    generate_agency_keys("caf", keys)
    with pytest.raises(RefusalError, match="vraie clé est déjà installée"):
        install_demo_keys("caf", keys)


def test_ceremony_refuses_to_hand_the_key_to_the_operator(tmp_path):
    w = make_world(tmp_path)
    with pytest.raises(RefusalError, match="refusé pour : operateur"):
        create_linkage_key(w.convention_id, w.keys["caf"],
                           {"cpam": w.keys["cpam"], "operateur": w.keys["operateur"]},
                           tmp_path / "w2", convention=w.convention)
    assert not (tmp_path / "w2").exists()


def test_subkeys_match_the_pseudonymise_token_engine(tmp_path):
    hmac_engine = pytest.importorskip("pipeline.agency.pseudonymise.hmac_engine")
    w = make_world(tmp_path)
    key = load_linkage_key(w.keys["caf"], w.convention_id, convention=w.convention)
    for name in ("tok_nir", "tok_enfant", "tok_nom_dob"):
        assert key.subkey(name) == hmac_engine.derive_subkey(key.secret, name)
