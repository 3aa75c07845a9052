"""`detecter`, the detecting operator's command (docs/SEPARATION.md, contract 6).

A small world built here, without the agencies' or the linking operator's commands: the
hand-built households of test_detect_rules (every rule, opposition cases, the reverse rule), the
single central run's `detect()` on their exports and links as the reference, then every party's
file from the same exports through the pure functions (detector_files, status_masks,
status_sums), signed with the demo keys under the demo convention. The command must write the
same targets byte for byte, measure the k of what D holds, and refuse (nothing in --out, an
audit entry « refus ») a missing manifest, a file changed after signature, a column the
convention does not allow, another linkage key, a convention without a detecting operator and
a sums file that lost a household.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml
from detect_builders import Builder
from test_detect_rules import ACTIVE, CASES, R

from pipeline.agency.pseudonymise import status_masks
from pipeline.central.detect import detect
from pipeline.central.match.status_sums import insured_opposition, linking_sums
from pipeline.shared import separation
from pipeline.shared.contract import EXPORT_SCHEMA_VERSION
from pipeline.shared.detector_files import caf_minima, household_rows, insured_rows
from pipeline.shared.masked_sums import person_bits
from pipeline.trust import audit
from pipeline.trust.convention import dump_convention, load_convention, sign_convention
from pipeline.trust.demo import install_demo_keys
from pipeline.trust.manifest import write_manifest
from pipeline.trust.reference import current_hashes

ROOT = Path(__file__).resolve().parents[2]
CONVENTION = ROOT / "conventions" / "demo-flers.yaml"
TODAY = "2026-11-22"
SECRET = b"cle de liaison du test (les parts se demasquent avec n'importe quelle cle commune)"
CAF, CPAM = "caf", "cpam"  # the demo convention's providers
LINKER = "operateur"  # the demo convention's linking operator: it signs its hand-off


def _sign(path: Path, agency: str, keys: Path, *, fingerprint: str | None = None,
          per_file: bool = False, convention: Path = CONVENTION) -> None:
    conv = load_convention(convention)
    write_manifest(path, agency=agency, convention_id=conv.id,
                   key_fingerprint=fingerprint or conv.linkage_key_fingerprint,
                   keys_dir=keys / agency, schema_version=EXPORT_SCHEMA_VERSION,
                   reference={"fichiers_reference": current_hashes()}, per_file=per_file)


def _write(frame: pl.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("separated")
    b = Builder(R)
    for _, members, opts, _ in CASES:
        b.foyer(members, **opts)
    b.cpam_only(**ACTIVE)
    b.cpam_only(opposed=True, **ACTIVE)
    b.foyer([("DEM", 30)], ressources=9000, prestations=("PPA",), **ACTIVE)
    b.foyer([("DEM", 30)], ressources=9000, prestations=("AL",), **ACTIVE)
    caf_path, cpam_path, links_path = b.write(root / "clair")
    detect(caf_path, cpam_path, links_path, root / "central")  # the single central run's

    keys = root / "keys"
    for party in (CAF, CPAM, "operateur", "ccas"):
        install_demo_keys(party, keys / party)
    caf, cpam = pl.read_parquet(caf_path), pl.read_parquet(cpam_path)
    links = pl.read_parquet(links_path)
    parties = root / "parties"
    for agency, frame in ((CAF, household_rows(caf)), (CPAM, insured_rows(cpam))):
        path = _write(frame, parties / agency / separation.DETECTION_DIR
                      / separation.DETECTION_FILE.format(provider=agency))
        _sign(path, agency, keys)
    rho = status_masks.factors(caf["foyer"], SECRET)
    masked = status_masks.mask(person_bits(cpam), SECRET)
    handoff = parties / LINKER / separation.HANDOFF_DIR
    for name, frame in ((separation.SUMS_FILE, linking_sums(caf, cpam, rho, masked, links)),
                        (separation.OPPOSITION_FILE, insured_opposition(caf, cpam, links))):
        _sign(_write(frame, handoff / name), LINKER, keys, per_file=True)
    parts = parties / CAF / separation.SHARES_DIR
    for name, frame in ((separation.SHARES_FILE, status_masks.caf_shares(caf, rho, links, SECRET)),
                        (separation.MINIMA_FILE, caf_minima(caf, links))):
        _sign(_write(frame, parts / name.format(provider=CAF)), CAF, keys, per_file=True)
    return {"root": root, "parties": parties, "keys": keys, "central": root / "central",
            "insured": insured_rows(cpam)}


@pytest.fixture
def run(world: dict, tmp_path: Path, run_cli):
    """A fresh copy of the parties' folders and a runner of the command on it."""
    parties = shutil.copytree(world["parties"], tmp_path / "parties")
    out, log = tmp_path / "detection", tmp_path / "audit_detection.jsonl"

    def invoke(*extra: str, convention: Path = CONVENTION, providers=(CAF, CPAM)):
        return run_cli(
            "detecter", "--convention", str(convention),
            *[arg for a in providers for arg in (
                "--detection", f"{a}={parties / a / separation.DETECTION_DIR}")],
            "--separation", str(parties / LINKER / separation.HANDOFF_DIR),
            "--parts", str(parties / CAF / separation.SHARES_DIR),
            "--out", str(out), "--audit-log", str(log), "--today", TODAY, *extra)

    return {"invoke": invoke, "parties": parties, "out": out, "log": log, "keys": world["keys"],
            "tmp": tmp_path}


def _file(run: dict, agency: str, name: str) -> Path:
    return run["parties"] / agency / separation.DETECTION_DIR / name


def test_same_targets_as_the_single_central_run(run: dict, world: dict) -> None:
    res = run["invoke"]()
    assert res.returncode == 0, res.stderr
    out, central = run["out"], world["central"]
    expected = pl.read_parquet(central / "targets.parquet")
    got = pl.read_parquet(out / "targets.parquet")
    assert expected.height > 20 and set(expected["agence"]) == {CAF, CPAM}
    assert got.equals(expected)
    assert (out / "targets.parquet").read_bytes() == (central / "targets.parquet").read_bytes()
    assert (out / "aggregates.csv").read_bytes() == (central / "aggregates.csv").read_bytes()
    stats = json.loads((out / "detect_stats.json").read_text("utf-8"))
    before = json.loads((central / "detect_stats.json").read_text("utf-8"))
    for key in ("regles_appliquees", "foyers", "assures", "cibles", "date_reference"):
        assert stats[key] == before[key], key
    assert "liens_par_passe" not in stats and "k_anonymat" not in stats  # D holds no link
    assert "monoparent_sous_plafond_sans_css\t" in res.stdout


def test_reverse_rule_targets_go_to_the_provider_that_sent_the_handle(run: dict,
                                                                      world: dict) -> None:
    """Three providers: half of the insured perimeter comes from the MSA's detection file; its
    reverse-rule targets go to the MSA, everything else is as with the CPAM alone."""
    from pipeline.central.detect.engine import TARGET_SORT
    from pipeline.trust.demo import build

    msa = "msa"
    keys, convention = run["tmp"] / "keys3", run["tmp"] / "conventions" / "demo-flers.yaml"
    build(keys, convention, providers=[CAF, CPAM, msa])
    insured = world["insured"]
    moved = insured["handle"].gather(list(range(0, insured.height, 2)))
    parts = {CPAM: insured.filter(~pl.col("handle").is_in(moved.implode())),
             msa: insured.filter(pl.col("handle").is_in(moved.implode()))}
    for agency, frame in parts.items():
        path = _write(frame, run["parties"] / agency / separation.DETECTION_DIR
                      / separation.DETECTION_FILE.format(provider=agency))
        _sign(path, agency, keys, convention=convention)
    for path, agency, per_file in (
            (_file(run, CAF, "caf.detection.parquet"), CAF, False),
            (run["parties"] / CAF / separation.SHARES_DIR / "caf.parts.parquet", CAF, True),
            (run["parties"] / CAF / separation.SHARES_DIR / "caf.minima.parquet", CAF, True)):
        _sign(path, agency, keys, convention=convention, per_file=per_file)
    res = run["invoke"](convention=convention, providers=(CAF, CPAM, msa))
    assert res.returncode == 0, res.stderr
    before = pl.read_parquet(world["central"] / "targets.parquet")
    expected = before.with_columns(agence=pl.when(pl.col("handle").is_in(moved.implode()))
                                   .then(pl.lit(msa)).otherwise(pl.col("agence")))
    got = pl.read_parquet(run["out"] / "targets.parquet")
    assert (got["agence"] == msa).sum() > 0 and (got["agence"] == CPAM).sum() > 0
    assert got.equals(expected.sort(TARGET_SORT, nulls_last=True, maintain_order=True))
    stats = json.loads((run["out"] / "detect_stats.json").read_text("utf-8"))
    assert stats["cibles"]["par_agence"][msa] == (got["agence"] == msa).sum()


def test_k_of_what_the_detecting_operator_holds(run: dict) -> None:
    assert run["invoke"]().returncode == 0
    k = json.loads((run["out"] / "detect_stats.json").read_text("utf-8"))["k_anonymat_detection"]
    households = pl.read_parquet(_file(run, CAF, "caf.detection.parquet"))
    insured = pl.read_parquet(_file(run, CPAM, "cpam.detection.parquet"))
    assert k["vue_foyers"]["foyers"] == households.height
    assert k["vue_assures"]["foyers"] == insured.height > 0
    for view in k.values():
        assert view["objectif_k1"] == 0.01 and view["objectif_k_moins_5"] == 0.05
        assert 0 <= view["part_k1"] <= view["part_k_moins_5"] <= 1
        assert view["objectif_k1_atteint"] == (view["part_k1"] < 0.01)
        assert view["objectif_k_moins_5_atteint"] == (view["part_k_moins_5"] < 0.05)
    # no size, no count, no link, no token in what is measured
    assert not {"handle", "foyer", "nb_lies", "adulte", "a_ppa"} & set(k["vue_foyers"]["colonnes"])
    entry = audit_entries(run["log"])[-1]
    assert entry["outcome"] == "succes" and entry["event"] == "detection_separee"
    assert set(entry["inputs"]) == {"caf_detection", "cpam_detection", "caf_parts",
                                    "caf_minima", "liaison_sommes", "liaison_oppositions"}
    assert "non_signes" not in entry  # the hand-off is signed by the linking operator
    assert set(entry["outputs"]) == {"targets.parquet", "aggregates.csv", "detect_stats.json"}
    run_json = json.loads((run["out"] / "run.json").read_text("utf-8"))
    assert run_json["audit_head"] == audit.verify(run["log"]).head


def audit_entries(log: Path) -> list[dict]:
    assert audit.verify(log).ok
    return [json.loads(line) for line in log.read_text("utf-8").splitlines()]


def _refused(run: dict, res, *needles: str, convention: Path = CONVENTION) -> None:
    assert res.returncode != 0, res.stdout
    message = " ".join(res.stderr.split())
    for needle in needles:
        assert needle in message, message
    assert not run["out"].exists()
    entry = audit_entries(run["log"])[-1]
    assert entry["outcome"] == "refus" and entry["event"] == "detection_separee"
    assert all(n in " ".join(entry["reason"].split()) for n in needles)


def test_refuses_a_missing_manifest(run: dict) -> None:
    (run["parties"] / CPAM / separation.DETECTION_DIR / "cpam.manifest.json").unlink()
    _refused(run, run["invoke"](), "cpam.manifest.json", "manifeste introuvable")


def test_refuses_a_file_changed_after_signature(run: dict) -> None:
    path = _file(run, CAF, "caf.detection.parquet")
    frame = pl.read_parquet(path)
    frame.with_columns(a_rsa=~pl.col("a_rsa").fill_null(False)).write_parquet(path)
    _refused(run, run["invoke"](), "caf.detection.parquet", "modifié ou remplacé après signature")


def test_refuses_a_parts_file_changed_after_signature(run: dict) -> None:
    path = run["parties"] / CAF / separation.SHARES_DIR / "caf.parts.parquet"
    pl.read_parquet(path).head(3).write_parquet(path)
    _refused(run, run["invoke"](), "caf.parts.parquet", "après signature")


def test_refuses_a_column_the_convention_does_not_allow(run: dict) -> None:
    path = _file(run, CPAM, "cpam.detection.parquet")
    pl.read_parquet(path).with_columns(statut_css=pl.lit("aucune")).write_parquet(path)
    _sign(path, CPAM, run["keys"])
    _refused(run, run["invoke"](), "cpam.detection.parquet", "non autorisée", "statut_css")


def test_refuses_a_handoff_outside_the_contract(run: dict) -> None:
    path = run["parties"] / LINKER / separation.HANDOFF_DIR / separation.SUMS_FILE
    pl.read_parquet(path).drop("opposition_liee").write_parquet(path)
    _sign(path, LINKER, run["keys"], per_file=True)
    _refused(run, run["invoke"](), "sommes.parquet", "contrat 6", "opposition_liee")


def test_refuses_an_unsigned_handoff(run: dict) -> None:
    path = run["parties"] / LINKER / separation.HANDOFF_DIR / "sommes.manifest.json"
    path.unlink()
    _refused(run, run["invoke"](), "sommes.manifest.json", "manifeste introuvable")


def test_refuses_a_handoff_changed_after_signature(run: dict) -> None:
    """The sums are what D unmasks: a changed sum would turn a household's bit."""
    path = run["parties"] / LINKER / separation.HANDOFF_DIR / separation.OPPOSITION_FILE
    pl.read_parquet(path).with_columns(opposition_foyer=pl.lit(False)).write_parquet(path)
    _refused(run, run["invoke"](), "oppositions.parquet", "après signature")


def test_refuses_a_handoff_signed_by_another_party(run: dict) -> None:
    """Only the convention's linking operator may sign the sums, not a provider."""
    path = run["parties"] / LINKER / separation.HANDOFF_DIR / separation.SUMS_FILE
    _sign(path, CAF, run["keys"], per_file=True)
    _refused(run, run["invoke"](), "sommes.manifest.json", "n'est pas operateur")


def test_refuses_another_linkage_key(run: dict) -> None:
    path = run["parties"] / CAF / separation.SHARES_DIR / "caf.minima.parquet"
    _sign(path, CAF, run["keys"], fingerprint="0" * 32, per_file=True)
    _refused(run, run["invoke"](), "caf.minima.manifest.json", "même clé de liaison")


def test_refuses_a_key_other_than_the_conventions(run: dict) -> None:
    """Every file made with the same key, but not the convention's."""
    other = "1" * 32
    for folder in (CAF, CPAM):
        _sign(_file(run, folder, f"{folder}.detection.parquet"), folder, run["keys"],
              fingerprint=other)
    for name in ("caf.parts.parquet", "caf.minima.parquet"):
        _sign(run["parties"] / CAF / separation.SHARES_DIR / name, CAF, run["keys"],
              fingerprint=other, per_file=True)
    for name in (separation.SUMS_FILE, separation.OPPOSITION_FILE):
        _sign(run["parties"] / LINKER / separation.HANDOFF_DIR / name, LINKER, run["keys"],
              fingerprint=other, per_file=True)
    _refused(run, run["invoke"](), other, "différente de celle déclarée par la convention")


def test_refuses_a_convention_without_a_detecting_operator(run: dict) -> None:
    conv = load_convention(CONVENTION)
    content = {k: v for k, v in conv.content.items()}
    content["parties"] = {p: v for p, v in content["parties"].items()
                          if separation.ROLE_DETECTOR not in v["roles"]}
    assert len(content["parties"]) == len(conv.parties) - 1
    path = dump_convention(content, {}, run["tmp"] / "conventions" / CONVENTION.name)
    for party in content["parties"]:
        sign_convention(path, party, run["keys"] / party)
    assert load_convention(path).detectors == []
    _refused(run, run["invoke"](convention=path), str(path), "aucun opérateur de détection")


def test_refuses_sums_that_lost_a_household(run: dict) -> None:
    path = run["parties"] / LINKER / separation.HANDOFF_DIR / separation.SUMS_FILE
    sums = pl.read_parquet(path)
    sums.filter(pl.col("foyer") != sums.filter(pl.col("trouve_cpam"))["foyer"][0]).write_parquet(
        path)
    _sign(path, LINKER, run["keys"], per_file=True)
    _refused(run, run["invoke"](), "sommes.parquet", "1 foyer(s) non opposé(s)")


def test_refuses_sums_without_their_shares(run: dict) -> None:
    path = run["parties"] / LINKER / separation.HANDOFF_DIR / separation.SUMS_FILE
    shares = pl.read_parquet(run["parties"] / CAF / separation.SHARES_DIR / "caf.parts.parquet")
    sums = pl.read_parquet(path)
    # a found household whose share the CAF "forgot": the sums cannot be unmasked
    lost = sums.filter(pl.col("trouve_cpam"))["foyer"][0]
    shares_path = run["parties"] / CAF / separation.SHARES_DIR / "caf.parts.parquet"
    shares.filter(pl.col("foyer") != lost).write_parquet(shares_path)
    _sign(shares_path, CAF, run["keys"], per_file=True)
    _refused(run, run["invoke"](), "caf.parts.parquet", "sommes masquées incohérentes")


def test_refuses_an_audit_log_inside_the_output_folder(run: dict) -> None:
    res = run["invoke"]("--audit-log", str(run["out"] / "audit.jsonl"))
    assert res.returncode != 0 and "journal d'audit" in res.stderr
    assert not run["out"].exists()


def test_demo_convention_names_the_detecting_operator() -> None:
    """Control for the refusal above: the demo convention does name one."""
    doc = yaml.safe_load(CONVENTION.read_text("utf-8"))
    assert any(separation.ROLE_DETECTOR in p["roles"] for p in doc["parties"].values())
