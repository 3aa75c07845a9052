"""The trust holes of issue 11: each test here failed on the code before the fix.

- the agency refuses a convention the gate would refuse, before anything is written;
- published demo keys and demo linkage-key fingerprints are refused outside a demo convention;
- the handle seed is refused outside a demo convention;
- the convention pins the files that decide what runs (agency, gate, manifest, report, audit);
- a territory pins a newly published CSS parameter table without a code change;
- the gate refuses an export of another contract version.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from trust_world import TODAY, edit_yaml, export_frame, full_world, make_world

from pipeline.agency.pseudonymise.core import pseudonymise
from pipeline.agency.pseudonymise.synthetic import ingested
from pipeline.common.errors import RefusalError
from pipeline.common.files import sha256_file
from pipeline.common.tables import write_parquet
from pipeline.shared.contract import EXPORT_SCHEMA_VERSION
from pipeline.trust.convention import load_convention
from pipeline.trust.demo import DEMO_SEED, install_demo_keys
from pipeline.trust.gate import verify_central_inputs
from pipeline.trust.keys import (
    _hkdf,
    create_linkage_key,
    fingerprint,
    generate_agency_keys,
    install_linkage_key,
    load_linkage_key,
    unwrap_linkage_key,
)
from pipeline.trust.manifest import write_manifest

ROOT = Path(__file__).resolve().parents[2]
DEMO_KEYS = ROOT / "sample_data" / "keys"
RULES = "pipeline/shared/rules.yaml"


@pytest.fixture(autouse=True)
def _bundled_css_table():
    """The gate may switch the detection to a pinned table: back to the bundled one after."""
    from pipeline.shared import css_params

    yield
    if hasattr(css_params, "use_parameters"):
        css_params.use_parameters(None)


def _workdir(root: Path, agency: str = "caf") -> Path:
    work = root / f"{agency}-work"
    write_parquet(ingested(agency, 60, seed=4), work / "ingested.parquet", sort_by=["line"],
                  private=True)
    return work


def _export_nothing_written(export_dir: Path, work: Path) -> None:
    assert not export_dir.exists() or not any(export_dir.iterdir())
    assert not (work / "handles.parquet").exists()


def _gate(world, **kw):
    return verify_central_inputs(world.convention, {a: world.exports[a] for a in ("caf", "cpam")},
                                 ["rsa_sans_css"], kw.get("today", TODAY))


# --- 1. the agency verifies the convention before it writes an export -----------------------


def test_agency_refuses_a_tampered_convention_before_writing(tmp_path):
    w = make_world(tmp_path)
    work = _workdir(tmp_path)
    edit_yaml(w.convention, retention_days=3650)  # signatures kept, content changed
    with pytest.raises(RefusalError, match="modifié après signature"):
        pseudonymise("caf", work, w.keys["caf"], w.convention, tmp_path / "export", today=TODAY)
    _export_nothing_written(tmp_path / "export", work)


def test_agency_refuses_an_expired_convention_before_writing(tmp_path):
    w = make_world(tmp_path, spec_changes={"valid_until": "2026-06-30"})
    work = _workdir(tmp_path)
    with pytest.raises(RefusalError, match="expirée"):
        pseudonymise("caf", work, w.keys["caf"], w.convention, tmp_path / "export", today=TODAY)
    _export_nothing_written(tmp_path / "export", work)


def test_agency_refuses_keys_other_than_the_convention_declares(tmp_path):
    w = make_world(tmp_path)
    work = _workdir(tmp_path)
    other = tmp_path / "other-caf"
    generate_agency_keys("caf", other)
    shutil.copytree(w.keys["caf"] / "linkage", other / "linkage")
    with pytest.raises(RefusalError, match="n'est pas celle déclarée"):
        pseudonymise("caf", work, other, w.convention, tmp_path / "export", today=TODAY)
    _export_nothing_written(tmp_path / "export", work)


def test_agency_signs_the_reference_hashes_into_its_manifest(tmp_path):
    from pipeline.trust.reference import current_hashes

    w = make_world(tmp_path)
    work = _workdir(tmp_path)
    res = pseudonymise("caf", work, w.keys["caf"], w.convention, tmp_path / "export",
                       today=TODAY)
    manifest = json.loads(res.manifest_file.read_text("utf-8"))
    assert manifest["fichiers_reference"] == current_hashes()
    assert manifest["fichiers_reference"][RULES] == sha256_file(ROOT / RULES)
    assert manifest["table_parametres"]["fichier"] == "pipeline/shared/parameters/css.yaml"


# --- 2. demo key pairs and the demo linkage key are refused outside a demo ------------------


def test_real_linkage_key_is_not_wrapped_for_a_demo_key_pair(tmp_path):
    creator = tmp_path / "caf"
    generate_agency_keys("caf", creator)
    with pytest.raises(RefusalError, match="DÉMONSTRATION"):
        create_linkage_key("vraie-conv", creator, {"cpam": DEMO_KEYS / "cpam"}, tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.wrapped.json"))


def test_real_linkage_key_wrapped_for_demo_keys_is_not_unwrapped(tmp_path, monkeypatch):
    import pipeline.trust.keys as keys

    creator = tmp_path / "caf"
    generate_agency_keys("caf", creator)
    # a wrapped file made by a tool without the wrap-side refusal
    monkeypatch.setattr(keys, "_refuse_demo_public", lambda *a, **k: None, raising=False)
    create_linkage_key("vraie-conv", creator, {"cpam": DEMO_KEYS / "cpam"}, tmp_path / "out")
    monkeypatch.undo()
    anyone = tmp_path / "anyone"
    install_demo_keys("cpam", anyone)
    with pytest.raises(RefusalError, match="DÉMONSTRATION"):
        unwrap_linkage_key(tmp_path / "out" / "vraie-conv.cpam.wrapped.json", anyone)
    assert not (anyone / "linkage" / "vraie-conv.key.json").exists()


def _demo_derived_secret(convention_id: str) -> bytes:
    """The linkage key anyone can derive from the published demo seed for `convention_id`."""
    return _hkdf(DEMO_SEED, f"nonrecours/demo/linkage/{convention_id}".encode())


def test_demo_derived_linkage_key_refused_under_a_real_convention(tmp_path):
    secret = _demo_derived_secret("vraie-conv")
    w = make_world(tmp_path, "vraie-conv", spec_changes={"linkage_key_fingerprint": None})
    install_linkage_key(w.keys["caf"], "vraie-conv", secret, demo=False, creator="caf")
    with pytest.raises(RefusalError, match="DÉMONSTRATION"):
        load_linkage_key(w.keys["caf"], "vraie-conv", convention=w.convention)
    work = _workdir(tmp_path)
    with pytest.raises(RefusalError, match="DÉMONSTRATION"):
        pseudonymise("caf", work, w.keys["caf"], w.convention, tmp_path / "export", today=TODAY)
    _export_nothing_written(tmp_path / "export", work)


def test_convention_declaring_the_demo_fingerprint_is_refused(tmp_path):
    demo_fp = fingerprint(_demo_derived_secret("demo-flers"))
    w = make_world(tmp_path, spec_changes={"linkage_key_fingerprint": demo_fp})
    from pipeline.trust.convention import verify_convention

    with pytest.raises(RefusalError, match="DÉMONSTRATION"):
        verify_convention(load_convention(w.convention), TODAY)


def test_gate_refuses_exports_made_with_the_demo_linkage_key(tmp_path):
    demo_fp = fingerprint(_demo_derived_secret("demo-flers"))
    w = make_world(tmp_path, spec_changes={"linkage_key_fingerprint": None})
    for agency in ("caf", "cpam"):
        w.write_export(agency, export_frame(agency), fingerprint=demo_fp)
    with pytest.raises(RefusalError, match="DÉMONSTRATION"):
        _gate(w)


# --- 3. the handle seed is for demo conventions only -----------------------------------------


def test_seed_refused_outside_a_demo_convention(tmp_path):
    w = make_world(tmp_path)
    work = _workdir(tmp_path)
    with pytest.raises(RefusalError, match="graine"):
        pseudonymise("caf", work, w.keys["caf"], w.convention, tmp_path / "export", seed=7,
                     today=TODAY)
    _export_nothing_written(tmp_path / "export", work)
    # without a seed the same run goes through
    res = pseudonymise("caf", work, w.keys["caf"], w.convention, tmp_path / "export",
                       today=TODAY)
    assert res.export_file.exists()


# --- 5. the convention pins the files that decide what runs ---------------------------------


@pytest.fixture
def repo_copy(tmp_path, monkeypatch) -> Path:
    """A copy of the reference files the trust code reads instead of the repository's."""
    import pipeline.trust.reference as reference

    copy = tmp_path / "repo"
    for rel in reference.reference_paths():
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, copy / rel)
    monkeypatch.setattr(reference, "ROOT", copy)
    return copy


def test_changed_rule_catalogue_refused_at_the_gate_naming_the_file(tmp_path, repo_copy):
    w = full_world(tmp_path / "w")
    assert _gate(w).reference_files[RULES] == sha256_file(repo_copy / RULES)
    with (repo_copy / RULES).open("a", encoding="utf-8") as fh:
        fh.write("\n# seuil changé en douce\n")
    with pytest.raises(RefusalError, match=re.escape(f"« {RULES} » a été modifié")):
        _gate(w)


def test_changed_rule_catalogue_refused_at_the_agency(tmp_path, repo_copy):
    w = make_world(tmp_path / "w")
    work = _workdir(tmp_path)
    (repo_copy / RULES).write_text((repo_copy / RULES).read_text("utf-8") + "\n# x\n", "utf-8")
    with pytest.raises(RefusalError, match=re.escape(RULES)):
        pseudonymise("caf", work, w.keys["caf"], w.convention, tmp_path / "export", today=TODAY)
    _export_nothing_written(tmp_path / "export", work)


def test_convention_without_reference_map_is_refused(tmp_path):
    w = make_world(tmp_path, sign=False)
    doc = yaml.safe_load(w.convention.read_text("utf-8"))
    doc.pop("fichiers_reference")
    w.convention.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), "utf-8")
    w.sign_all()
    for agency in ("caf", "cpam"):
        w.write_export(agency, export_frame(agency))
    with pytest.raises(RefusalError, match="fichiers_reference"):
        _gate(w)


def test_gate_refuses_a_manifest_made_under_other_reference_files(world):
    from pipeline.trust.reference import current_hashes

    def sign_cpam(reference):
        write_manifest(world.exports["cpam"], agency="cpam", convention_id=world.convention_id,
                       key_fingerprint=world.fingerprint, keys_dir=world.keys["cpam"],
                       schema_version=EXPORT_SCHEMA_VERSION, reference=reference)

    sign_cpam({"fichiers_reference": {**current_hashes(), RULES: "0" * 64}})
    with pytest.raises(RefusalError, match=re.escape(f"que ceux de ce run ({RULES})")):
        _gate(world)
    sign_cpam(None)
    with pytest.raises(RefusalError, match="fichiers_reference"):
        _gate(world)


def test_gate_result_audit_and_report_carry_the_reference_hashes(tmp_path):
    from pipeline.central.report.render import build_view
    from pipeline.trust.reference import current_hashes

    w = full_world(tmp_path)
    facts = _gate(w).to_dict()
    assert facts["fichiers_reference"] == current_hashes()
    assert facts["table_parametres"]["source"]
    view = build_view({"gate": facts})
    shown = {r["fichier"]: r["sha256"] for r in view["convention"]["reference_files"]}
    assert shown == current_hashes()
    assert view["convention"]["parameter_table"]["fichier"].endswith("css.yaml")


def test_committed_demo_convention_pins_the_current_files():
    """Fails as soon as a reference file changes: re-sign with `python -m pipeline.trust.demo`."""
    from pipeline.trust.reference import current_hashes

    conv = load_convention(ROOT / "conventions" / "demo-flers.yaml")
    assert conv.content.get("fichiers_reference") == current_hashes(), (
        "la convention de démonstration ne fixe plus les fichiers actuels : "
        "lancer « python -m pipeline.trust.demo » pour la re-signer")


# --- 6. a newly published parameter table pinned by the convention --------------------------


def _next_table(folder: Path) -> Path:
    """The bundled table plus a confirmed 1 April 2026 revaluation (synthetic figures)."""
    data = yaml.safe_load((ROOT / "pipeline/shared/parameters/css.yaml").read_text("utf-8"))
    last = data["ceilings"][-1]
    data["ceilings"].append({**last, "from": "2026-04-01", "to": "2027-03-31", "confirmed": True,
                             "gratuite": {k: v + 100 for k, v in last["gratuite"].items()}})
    forfaits = data["housing_forfait"]["periods"]
    forfaits.append({**forfaits[-1], "from": "2026-04-01", "to": "2027-03-31"})
    path = folder / "css-2026-04.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    return path


def test_territory_pins_a_new_parameter_table_without_code_change(tmp_path):
    import datetime as dt

    from pipeline.shared import css_params

    (tmp_path / "conventions").mkdir(parents=True)
    table = _next_table(tmp_path / "conventions")
    pin = {"fichier": table.name, "sha256": sha256_file(table),
           "source": "Arrêté de revalorisation du 1er avril 2026 (JO)"}
    w = make_world(tmp_path, spec_changes={"table_parametres_css": pin})
    for agency in ("caf", "cpam"):
        w.write_export(agency, export_frame(agency))
    before = css_params.select_period(dt.date(2026, 6, 1))
    assert before.warning  # the bundled table has no confirmed 2026 period
    result = _gate(w)
    assert result.parameter_table["fichier"] == table.name
    assert result.parameter_table["source"] == pin["source"]
    assert result.to_dict()["table_parametres"]["sha256"] == pin["sha256"]
    applied = css_params.select_period(dt.date(2026, 6, 1))
    assert applied.warning is None and applied.period.gratuite["1"] == \
        before.period.gratuite["1"] + 100
    # an altered table is refused
    table.write_text(table.read_text("utf-8") + "\n# retouchée\n", "utf-8")
    with pytest.raises(RefusalError, match="table de paramètres différente"):
        _gate(w)


# --- 7. the gate refuses an export of another contract version -------------------------------


def test_gate_refuses_an_export_of_another_contract_version(world):
    old = str(int(EXPORT_SCHEMA_VERSION) - 1)
    write_manifest(world.exports["cpam"], agency="cpam", convention_id=world.convention_id,
                   key_fingerprint=world.fingerprint, keys_dir=world.keys["cpam"],
                   schema_version=old)
    with pytest.raises(RefusalError, match=re.escape(
            f"export au format de contrat {old}, ce run attend le format "
            f"{EXPORT_SCHEMA_VERSION} : mettre à jour l'outil à l'organisme")):
        _gate(world)

