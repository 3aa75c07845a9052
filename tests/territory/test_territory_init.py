"""A new (non-demo) territory from scratch: `territoire init`, signatures, then every command with
`--config` only — no hand edit — on a small synthetic dataset whose extract holds people named
like codes (« Al », « Rsa », « Couple »)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.common.errors import InputError
from pipeline.shared.providers import AGENCIES
from pipeline.shared.separation import (
    DETECTION_DIR,
    HANDOFF_DIR,
    OPPOSITION_FILE,
    SHARES_DIR,
    SUMS_FILE,
)
from pipeline.territory.config import load_config
from pipeline.trust.convention import OTHER_PARTIES
from pipeline.trust.manifest import manifest_path_for

ROOT = Path(__file__).resolve().parents[2]
PARTIES = (*AGENCIES, *OTHER_PARTIES)


def nr(*args: str | Path) -> str:
    """Run one command in-process; fail the test with its output if it fails."""
    res = CliRunner().invoke(app, [str(a) for a in args])
    if res.exit_code != 0:
        raise AssertionError(f"{args[:2]} -> {res.exit_code}: {res.output}\n{res.exception!r}")
    return res.output


def refused(*args: str | Path) -> str:
    """Run a command that must fail; its message (output or exception)."""
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code != 0, res.output
    return f"{res.output} {res.exception}"


def _name_people_like_codes(extract: Path) -> None:
    """The first CAF persons get code-like names (the synthetic file is UTF-8)."""
    raw = pl.read_csv(extract, separator=";", infer_schema=False)
    names = [("Al", "Rsa"), ("Couple", "Isole"), ("Paje", "Af"), ("Non", "Dem")]
    first = pl.int_range(pl.len()) < len(names)
    fill = raw.height - len(names)
    raw = raw.with_columns(
        pl.when(first).then(pl.Series([g for g, _ in names]).extend_constant(None, fill))
        .otherwise(pl.col("prenoms")).alias("prenoms"),
        pl.when(first).then(pl.Series([s for _, s in names]).extend_constant(None, fill))
        .otherwise(pl.col("nom_naissance")).alias("nom_naissance"))
    raw.write_csv(extract, separator=";")


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    nr("synth", "--households", "150", "--seed", "11", "--out", out)
    _name_people_like_codes(out / "raw" / "caf_extract.csv")
    return out


def _init(root: Path, synth: Path, *extra: str) -> Path:
    inputs = {"caf.extrait": "raw/caf_extract.csv", "cpam.extrait": "raw/cpam_extract.csv",
              "caf.table_iris": "territory/iris_quartiers.csv",
              **{f"{a}.{k}": f"agencies/{a}/{k}.csv" for a in ("caf", "cpam")
                 for k in ("opposition", "contacts")}}
    args = [f"--chemin={k}={synth / v}" for k, v in inputs.items()]
    nr("territoire", "init", "--dossier", root, "--nom", "Vire Normandie", "--departement", "14",
       *args, *extra)
    return root / "territoire.toml"


def test_whole_non_demo_path_from_scratch(tmp_path: Path, synth: Path) -> None:
    cfg_file = _init(tmp_path / "t", synth)
    cfg = load_config(cfg_file)
    conv = cfg.path("convention")
    assert conv is not None and conv.name == "tznr-vire-normandie.yaml"
    # unsigned: nothing runs yet
    assert "non signée par la partie" in refused("convention", "verify", conv)
    for party in PARTIES:
        nr("convention", "sign", conv, "--party", party, "--keys-dir",
           tmp_path / "t" / "cles" / party)
    assert "valide" in nr("convention", "verify", conv)
    for agency in ("caf", "cpam"):
        nr("ingest", "--agency", agency, "--config", cfg_file)
        nr("pseudonymise", "--agency", agency, "--config", cfg_file)
        # the secure transfer to the operator
        shutil.copytree(cfg.path("export", agency), cfg.path(f"recu_{agency}"))
    nr("match", "--config", cfg_file)
    # the separated detection: the CAF's parts over its link list, then the secure transfers to
    # the detecting operator (its detection files, the CAF's parts, the linking operator's sums)
    nr("parts", "--agency", "caf", "--config", cfg_file)
    inbox = cfg.path("recu_detection")
    for agency in ("caf", "cpam"):
        shutil.copytree(cfg.path("dossier", agency) / DETECTION_DIR, inbox / agency)
    shutil.copytree(cfg.path("dossier", "caf") / SHARES_DIR, inbox / SHARES_DIR)
    (inbox / HANDOFF_DIR).mkdir()
    for name in (SUMS_FILE, OPPOSITION_FILE):  # each with the linking operator's signature
        for path in (cfg.path("sortie") / HANDOFF_DIR / name,
                     manifest_path_for(cfg.path("sortie") / HANDOFF_DIR / name, "",
                                       per_file=True)):
            shutil.copy(path, inbox / HANDOFF_DIR / path.name)
    nr("detecter", "--config", cfg_file)
    for agency in ("caf", "cpam"):
        # an agency without a contact history says so explicitly (reidentify refuses otherwise)
        history = synth / "agencies" / agency / "contacts.csv"
        nr("reidentify", "--agency", agency, "--config", cfg_file,
           *([] if history.exists() else ["--sans-historique"]))

    # the people named like codes went through ingest and pseudonymise
    handles = pl.read_parquet(cfg.path("dossier", "caf") / "handles.parquet")
    assert {"AL", "COUPLE", "PAJE"} <= set(handles["prenom"].drop_nulls())
    # every token was exported (the old template exported none), and linked centrally
    export = pl.read_parquet(cfg.path("export", "cpam") / "cpam.pseudo.parquet")
    assert {"tok_nir", "tok_nom_dob", "tok_enfant"} <= set(export.columns)
    central = cfg.path("sortie")
    stats = json.loads((central / "link_stats.json").read_text("utf-8"))
    links = pl.read_parquet(central / "links.parquet").height
    assert links > 0.8 * export.height, stats["funnel"]
    targets = pl.read_parquet(cfg.path("sortie_detection") / "targets.parquet")
    assert targets.height > 0
    lists = sorted(p.name for p in cfg.path("listes", "caf").glob("cible_*.xlsx"))
    assert lists, "no CCAS list written"
    assert (cfg.path("journal")).exists()
    # the keys and local tables stay owner-only
    assert (tmp_path / "t" / "cles").stat().st_mode & 0o077 == 0
    assert (cfg.path("dossier", "caf") / "handles.parquet").stat().st_mode & 0o077 == 0


def test_explicit_option_wins_over_config(tmp_path: Path, synth: Path) -> None:
    cfg_file = _init(tmp_path / "t", synth)
    other = tmp_path / "ailleurs"
    nr("ingest", "--config", cfg_file, "--agency", "cpam", "--out", other)
    assert (other / "ingested.parquet").exists()
    assert not (tmp_path / "t" / "cpam" / "ingested.parquet").exists()


def test_single_agency_config_supplies_the_agency(tmp_path: Path, synth: Path) -> None:
    cfg_file = tmp_path / "cpam.toml"
    cfg_file.write_text(f'[cpam]\nextrait = "{synth / "raw" / "cpam_extract.csv"}"\n'
                        'dossier = "site-cpam"\n', "utf-8")
    nr("ingest", "--config", cfg_file)
    assert (tmp_path / "site-cpam" / "ingested.parquet").exists()


def test_config_errors_name_the_file(tmp_path: Path) -> None:
    bad_key = tmp_path / "a.toml"
    bad_key.write_text('[caf]\nextrat = "x.csv"\n', "utf-8")
    with pytest.raises(InputError, match=r"a\.toml : clé inconnue dans \[caf\] : extrat"):
        load_config(bad_key)
    broken = tmp_path / "b.toml"
    broken.write_text('[caf\nextrait = "x.csv"\n', "utf-8")
    with pytest.raises(InputError, match=r"b\.toml : configuration TOML illisible.*line 1"):
        load_config(broken)
    with pytest.raises(InputError, match="introuvable"):
        load_config(tmp_path / "absent.toml")


def test_init_convention_lists_come_from_the_catalogues(tmp_path: Path, synth: Path) -> None:
    from pipeline.agency.pseudonymise.tokens import load_catalogue
    from pipeline.shared.rules import load_rules
    from pipeline.trust.convention import central_readiness_errors, load_convention

    conv = load_convention(load_config(_init(tmp_path / "t", synth)).path("convention"))
    assert not conv.demo
    for agency in ("caf", "cpam"):
        assert set(load_catalogue().names(agency)) <= set(conv.allowed_fields(agency))
    assert conv.allowed_rules == [r.id for r in load_rules()]
    assert central_readiness_errors(conv) == []
    assert conv.linkage_key_fingerprint


def test_init_refuses_demo_keys_and_a_second_run(tmp_path: Path, synth: Path) -> None:
    assert "clé de DÉMONSTRATION refusée" in refused(
        "territoire", "init", "--dossier", tmp_path / "d", "--nom", "X",
        "--cles", f"caf={ROOT / 'sample_data' / 'keys' / 'caf'}")
    assert not (tmp_path / "d" / "territoire.toml").exists()
    cfg_file = _init(tmp_path / "t", synth)
    before = cfg_file.read_bytes()
    assert "déjà initialisé" in refused("territoire", "init", "--dossier", tmp_path / "t",
                                        "--nom", "Vire Normandie")
    assert cfg_file.read_bytes() == before
