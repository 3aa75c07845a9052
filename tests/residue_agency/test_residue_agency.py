"""The agency's `residu` step: request -> owner-only residu.parquet + signed manifest; its
refusals (unknown handle, malformed or missing request, convention without residue fields) and
the privacy of what leaves (no raw identifier, opposed persons never encoded)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import stat
from pathlib import Path

import polars as pl
import pytest

from pipeline.agency.pseudonymise.core import pseudonymise
from pipeline.agency.pseudonymise.prepare import prepare_components
from pipeline.agency.pseudonymise.synthetic import ingested
from pipeline.agency.residue import encode_residue
from pipeline.common.errors import PipelineError
from pipeline.common.tables import write_parquet
from pipeline.shared import bloom
from pipeline.shared.leak_scan import scan_frame

ROOT = Path(__file__).resolve().parents[2]
CONVENTION = ROOT / "conventions" / "demo-flers.yaml"
TODAY = "2026-11-22"


@dataclasses.dataclass(frozen=True)
class Agency:
    work: Path
    keys: Path
    ingested: pl.DataFrame
    handles: pl.DataFrame


@pytest.fixture(scope="module")
def caf(tmp_path_factory: pytest.TempPathFactory) -> Agency:
    """A CAF folder pseudonymised under the demo convention, two dossiers opposed."""
    from pipeline.trust.demo import install_demo_keys

    root = tmp_path_factory.mktemp("caf")
    work = root / "caf"
    work.mkdir(mode=0o700)
    df = ingested("caf", 300, seed=6)
    write_parquet(df, work / "ingested.parquet", sort_by=["line"], private=True)
    keys = work / "keys"
    install_demo_keys("caf", keys, source=ROOT / "sample_data" / "keys")
    opposed = df["matricule"].unique(maintain_order=True).head(2).to_list()
    (root / "opposition.csv").write_text("matricule;nir\n" + "".join(f"{m};\n" for m in opposed),
                                         "utf-8")
    pseudonymise("caf", work, keys, CONVENTION, work / "export", opposition=root /
                  "opposition.csv", seed=1, today=dt.date.fromisoformat(TODAY))
    return Agency(work, keys, df, pl.read_parquet(work / "handles.parquet"))


def _request(path: Path, handles: list[str]) -> Path:
    path.write_text("handle\n" + "".join(f"{h}\n" for h in sorted(handles)), "utf-8")
    return path


def _args(a: Agency, request: Path, export: Path, *extra: str) -> list[str]:
    return ["residu", "--agency", "caf", "--demande", str(request), "--workdir", str(a.work),
            "--keys", str(a.keys), "--convention", str(CONVENTION), "--export", str(export),
            "--today", TODAY, *extra]


def _one_line(stderr: str) -> str:
    """The error: one French line after the progress lines (the terminal may wrap it)."""
    assert "Traceback" not in stderr and "ERREUR" in stderr, stderr
    return " ".join(ln.strip() for ln in stderr[stderr.index("ERREUR"):].splitlines())


def _picked(a: Agency) -> tuple[list[str], list[str]]:
    free = a.handles.filter(~pl.col("opposition"))["handle"].head(40).to_list()
    opposed = a.handles.filter(pl.col("opposition"))["handle"].head(3).to_list()
    assert len(opposed) == 3
    return free, opposed


def test_help_in_french(run_cli) -> None:
    res = run_cli("residu", "--help")
    assert res.returncode == 0
    text = " ".join(res.stdout.split())
    assert "--demande" in text and "handle" in text and "opposition" in text


def test_residue_written_signed_and_private(run_cli, caf: Agency, tmp_path: Path) -> None:
    from pipeline.trust.convention import load_convention
    from pipeline.trust.keys import load_linkage_key
    from pipeline.trust.manifest import verify_manifest

    free, opposed = _picked(caf)
    request = _request(tmp_path / "demande_caf.csv", free + opposed)
    export = tmp_path / "residu"
    res = run_cli(*_args(caf, request, export, "--json"))
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["counts"] == {"demandes": 43, "encodes": 40,
                                                "exclus_opposition": 3}
    out = export / bloom.RESIDUE_FILE
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert stat.S_IMODE(export.stat().st_mode) == 0o700
    frame = pl.read_parquet(out)
    assert frame.columns == bloom.RESIDUE_FIELDS
    assert frame["handle"].to_list() == sorted(free)  # opposed persons never encoded
    conv = load_convention(CONVENTION)
    manifest = verify_manifest(export / "caf.manifest.json", conv)
    assert manifest.rows == 40 and manifest.content["extra"]["export"] == "residu"
    assert manifest.content["extra"]["residu"]["exclus_opposition"] == 3
    # the lanes are the encoder's on those rows' prepared components, under the linkage key
    secret = load_linkage_key(caf.keys, conv.id, convention=conv).secret
    rows = (caf.handles.filter(pl.col("handle").is_in(free)).select("handle", "line")
            .join(caf.ingested, on="line").sort("handle"))
    expected = bloom.encode(bloom.components_of(prepare_components(rows, "caf")), secret)
    assert frame.select(bloom.LANES).equals(expected)
    leakage = json.loads((export / "caf.residu.leakage.json").read_text("utf-8"))
    assert leakage["comptes"]["encodes"] == 40 and leakage["scan"]["ok"]
    try:
        import pipeline.agency.pseudonymise.attacks.bloom_attacks  # noqa: F401
    except ImportError:
        assert "absent" in leakage["attaques"]["statut"]
    else:  # the operator's attacks on the hardened lanes, scored against the plaintext
        assert leakage["attaques"]["lignes"] == 40
        assert leakage["attaques"]["noms_retrouves"] <= 0.1
    audit = (caf.work / "audit.jsonl").read_text("utf-8").splitlines()
    assert json.loads(audit[-1])["event"] == "residu"
    again = run_cli(*_args(caf, request, export))  # an existing output needs --remplacer
    assert again.returncode != 0 and "--remplacer" in _one_line(again.stderr)


def test_no_raw_identifier_in_the_residue_folder(caf: Agency, tmp_path: Path) -> None:
    free, _ = _picked(caf)
    request = _request(tmp_path / "demande_caf.csv", free)
    out = encode_residue("caf", caf.work, caf.keys, CONVENTION, request, tmp_path / "r",
                         today=dt.date.fromisoformat(TODAY))
    frame = pl.read_parquet(out)
    assert scan_frame(frame, caf.ingested, "caf")["ok"]
    rows = caf.handles.filter(pl.col("handle").is_in(free)).join(caf.ingested, on="line")
    secrets = set()
    for col in ("nom_naissance", "nom_usage", "prenom1", "prenoms", "nir", "telephone",
                "adresse", "matricule"):
        secrets |= {str(v) for v in rows[col].drop_nulls().to_list() if len(str(v)) >= 3}
    secrets |= {d.isoformat() for d in rows["date_naissance"].drop_nulls().to_list()}
    raw = b"".join(p.read_bytes() for p in sorted(out.parent.iterdir()))
    assert [s for s in secrets if s.encode() in raw] == []
    assert set(frame.columns) == set(bloom.RESIDUE_FIELDS)


def test_deterministic(caf: Agency, tmp_path: Path) -> None:
    free, _ = _picked(caf)
    request = _request(tmp_path / "demande_caf.csv", free)
    day = dt.date.fromisoformat(TODAY)
    a = encode_residue("caf", caf.work, caf.keys, CONVENTION, request, tmp_path / "a",
                       sign=False, today=day)
    b = encode_residue("caf", caf.work, caf.keys, CONVENTION, request, tmp_path / "b",
                       sign=False, today=day)
    assert a.read_bytes() == b.read_bytes()
    assert not (tmp_path / "a" / "caf.manifest.json").exists()


def test_unknown_handle_names_file_and_line(run_cli, caf: Agency, tmp_path: Path) -> None:
    free, _ = _picked(caf)
    request = tmp_path / "demande_caf.csv"
    request.write_text(f"handle\n{free[0]}\n{'0' * 32}\n{free[1]}\n", "utf-8")
    export = tmp_path / "residu"
    res = run_cli(*_args(caf, request, export))
    assert res.returncode == 2
    line = _one_line(res.stderr)
    assert "demande_caf.csv" in line and "ligne 3" in line and "handle inconnu" in line
    assert not export.exists()


@pytest.mark.parametrize(("content", "expected"), [
    ("nom\nabc\n", "ligne 1"),
    ("handle\nDUPONT\n", "ligne 2"),
    ("handle\n" + "a" * 32 + "\n" + "a" * 32 + "\n", "deux fois"),
])
def test_malformed_request_refused(run_cli, caf: Agency, tmp_path: Path, content: str,
                                   expected: str) -> None:
    request = tmp_path / "demande_caf.csv"
    request.write_text(content, "utf-8")
    res = run_cli(*_args(caf, request, tmp_path / "residu"))
    assert res.returncode == 2
    line = _one_line(res.stderr)
    assert expected in line and "DUPONT" not in line
    assert not (tmp_path / "residu").exists()


def test_missing_files_refused(run_cli, caf: Agency, tmp_path: Path) -> None:
    res = run_cli(*_args(caf, tmp_path / "absente.csv", tmp_path / "residu"))
    assert res.returncode == 2 and "absente.csv" in _one_line(res.stderr)
    empty = tmp_path / "vide"
    empty.mkdir(mode=0o700)
    request = _request(tmp_path / "demande_caf.csv", _picked(caf)[0])
    res = run_cli("residu", "--agency", "caf", "--demande", str(request), "--workdir",
                  str(empty), "--keys", str(caf.keys), "--convention", str(CONVENTION),
                  "--export", str(tmp_path / "residu"), "--today", TODAY)
    assert res.returncode == 2 and "handles.parquet" in _one_line(res.stderr)


def test_convention_without_residue_fields_refused(run_cli, caf: Agency, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.agency.residue.core import check_convention_allows
    from pipeline.trust.convention import Convention

    with pytest.raises(PipelineError, match="n'autorise pas l'envoi du résidu"):
        check_convention_allows(bloom.RESIDUE_FIELDS[:-1], "caf", "c.yaml")
    check_convention_allows(bloom.RESIDUE_FIELDS, "caf", "c.yaml")
    monkeypatch.setattr(Convention, "residue_fields", lambda self, agency: [])
    request = _request(tmp_path / "demande_caf.csv", _picked(caf)[0])
    res = run_cli(*_args(caf, request, tmp_path / "residu"))
    assert res.returncode == 2 and "résidu" in _one_line(res.stderr)
    assert not (tmp_path / "residu").exists()


def test_convention_lists_residue_fields_from_bloom_yaml() -> None:
    from pipeline.common.errors import RefusalError
    from pipeline.territory.bootstrap import convention_spec
    from pipeline.trust.convention import convention_from_dict, load_convention

    conv = load_convention(CONVENTION)
    assert conv.residue_fields("caf") == bloom.RESIDUE_FIELDS
    assert conv.residue_fields("cpam") == bloom.RESIDUE_FIELDS
    spec = convention_spec("Essai", "tznr-essai", dt.date(2026, 1, 1), dt.date(2026, 12, 31),
                           "0" * 32)
    assert spec["residue_fields"]["caf"] == bloom.RESIDUE_FIELDS
    doc = {**conv.content, "residue_fields": {"caf": ["handle", "nom"]}}
    with pytest.raises(RefusalError, match="identifiant en clair"):
        convention_from_dict(doc, CONVENTION)


def test_paths_from_the_territory_file(run_cli, caf: Agency, tmp_path: Path) -> None:
    toml = tmp_path / "territoire.toml"
    toml.write_text(f'[territoire]\nconvention = "{CONVENTION}"\n\n'
                    f'[caf]\ndossier = "{caf.work}"\ncles = "{caf.keys}"\n', "utf-8")
    request = _request(tmp_path / "demande_caf.csv", _picked(caf)[0][:5])
    res = run_cli("residu", "--config", str(toml), "--demande", str(request), "--export",
                  str(tmp_path / "r"), "--today", TODAY)
    assert res.returncode == 0, res.stderr
    assert pl.read_parquet(tmp_path / "r" / bloom.RESIDUE_FILE).height == 5


def test_empty_request_gives_an_empty_signed_residue(run_cli, caf: Agency, tmp_path: Path) -> None:
    request = _request(tmp_path / "demande_caf.csv", [])
    res = run_cli(*_args(caf, request, tmp_path / "r"))
    assert res.returncode == 0, res.stderr
    frame = pl.read_parquet(tmp_path / "r" / bloom.RESIDUE_FILE)
    assert frame.height == 0 and frame.columns == bloom.RESIDUE_FIELDS
    assert (tmp_path / "r" / "caf.manifest.json").exists()


def test_cpam_rows_encoded_from_their_own_columns() -> None:
    from pipeline.agency.residue.core import build_residue

    df = ingested("cpam", 60, seed=3)
    rows = df.with_columns(handle=pl.format("{}", pl.col("line")).str.zfill(32))
    out = build_residue(rows, "cpam", bytes(range(32)))
    assert out.columns == bloom.RESIDUE_FIELDS and out["handle"].is_sorted()
    expected = bloom.encode(bloom.components_of(prepare_components(rows.sort("handle"),
                                                                   "cpam")), bytes(range(32)))
    assert out.select(bloom.LANES).equals(expected)
