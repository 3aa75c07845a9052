"""The CAF's `parts` step end to end (docs/SEPARATION.md): the agencies' real `pseudonymise` and
`parts` commands on a small synthetic world, the linking operator's functions on their exports,
and the detecting operator's tables built from the parties' files equal those derived in the
clear; and the step's refusals (coverage provider, convention, malformed links), each writing
nothing."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import stat
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipeline.agency.pseudonymise.synthetic import ingested
from pipeline.common.tables import write_parquet
from pipeline.shared import separation
from pipeline.shared.masked_sums import BITS

ROOT = Path(__file__).resolve().parents[2]
CONVENTION = ROOT / "conventions" / "demo-flers.yaml"
TODAY = "2026-11-22"


@dataclasses.dataclass(frozen=True)
class World:
    root: Path
    caf: Path  # workdirs (keys in <workdir>/keys)
    cpam: Path
    links: pl.DataFrame  # caf_handle, cpam_handle
    links_file: Path
    caf_export: pl.DataFrame
    cpam_export: pl.DataFrame
    caf_clear: pl.DataFrame  # the same rows with their features (contracts 2-5: the reference)
    cpam_clear: pl.DataFrame


def _pseudonymise(root: Path, agency: str, frame: pl.DataFrame, opposition: str) -> Path:
    """The agency's real step under the demo convention and keys (export, detection file,
    the CAF's local file), as the `pseudonymise` command runs it."""
    from pipeline.agency.pseudonymise.core import pseudonymise
    from pipeline.trust.demo import install_demo_keys

    work = root / agency
    work.mkdir(mode=0o700)
    write_parquet(frame, work / "ingested.parquet", sort_by=["line"], private=True)
    install_demo_keys(agency, work / "keys", source=ROOT / "sample_data" / "keys")
    (root / f"opposition_{agency}.csv").write_text(opposition, "utf-8")
    pseudonymise(agency, work, work / "keys", CONVENTION, work / "export",
                 opposition=root / f"opposition_{agency}.csv", seed=1,
                 today=dt.date.fromisoformat(TODAY))
    return work


def _in_the_clear(root: Path, agency: str) -> pl.DataFrame:
    """The agency's export as one operator received it before contract 6, features included:
    same ingested rows, key, seed and opposition list, no allow-list."""
    from pipeline.agency.pseudonymise.core import export_in_the_clear

    return export_in_the_clear(root / agency, agency, CONVENTION, dt.date.fromisoformat(TODAY),
                               seed=1, opposition=root / f"opposition_{agency}.csv")


def _links(caf: pl.DataFrame, cpam: pl.DataFrame) -> pl.DataFrame:
    """Random one-to-one pairs of the two exports' handles, with, for sure, an adult of a
    household opposed at the CAF, and an opposed coverage person linked to a free adult."""
    rng = np.random.default_rng(5)
    opposed_adult = caf.filter(pl.col("opposition"))["handle"][0]
    free_adults = caf.filter(~pl.col("opposition") & pl.col("adulte"))["handle"]
    opposed_insured = cpam.filter(pl.col("opposition"))["handle"][0]
    free_insured = cpam.filter(~pl.col("opposition"))["handle"]
    caf_rest = caf["handle"].filter(~caf["handle"].is_in([opposed_adult, free_adults[0]]))
    cpam_rest = free_insured.slice(1)
    n = 200
    pairs = pl.DataFrame({
        "caf_handle": [opposed_adult, free_adults[0],
                       *caf_rest.gather(rng.permutation(caf_rest.len())[:n]).to_list()],
        "cpam_handle": [free_insured[0], opposed_insured,
                        *cpam_rest.gather(rng.permutation(cpam_rest.len())[:n]).to_list()],
    })
    return pairs.sort("caf_handle")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("parts")
    caf_in, cpam_in = ingested("caf", 300, seed=6), ingested("cpam", 300, seed=7)
    matricules = caf_in["matricule"].unique(maintain_order=True).head(2).to_list()
    caf = _pseudonymise(root, "caf", caf_in,
                        "matricule;nir\n" + "".join(f"{m};\n" for m in matricules))
    nirs = cpam_in["nir"].drop_nulls().head(3).to_list()
    cpam = _pseudonymise(root, "cpam", cpam_in, "nir\n" + "".join(f"{n}\n" for n in nirs))
    caf_export = pl.read_parquet(caf / "export" / "caf.pseudo.parquet")
    cpam_export = pl.read_parquet(cpam / "export" / "cpam.pseudo.parquet")
    links = _links(caf_export, cpam_export)
    links_file = root / separation.LINKS_FILE.format(provider="caf")
    links.write_parquet(links_file)
    return World(root, caf, cpam, links, links_file, caf_export, cpam_export,
                 _in_the_clear(root, "caf"), _in_the_clear(root, "cpam"))


def _args(w: World, links: Path, export: Path, *extra: str, agency: str = "caf") -> list[str]:
    work = w.caf if agency == "caf" else w.cpam
    return ["parts", "--agency", agency, "--liens", str(links), "--workdir", str(work),
            "--keys", str(work / "keys"), "--convention", str(CONVENTION), "--export",
            str(export), "--today", TODAY, *extra]


def _one_line(stderr: str) -> str:
    assert "Traceback" not in stderr and "ERREUR" in stderr, stderr
    return " ".join(ln.strip() for ln in stderr[stderr.index("ERREUR"):].splitlines())


def test_help_in_french(run_cli) -> None:
    res = run_cli("parts", "--help")
    assert res.returncode == 0
    text = " ".join(res.stdout.split())
    assert "--liens" in text and "opérateur de détection" in text


def test_detector_reads_through_the_protocol_what_the_clear_tables_give(
        run_cli, world: World, tmp_path: Path) -> None:
    """L's sums and opposition on the real exports, the CAF's real shares and minima, the real
    detection files: D's tables equal those the engine derives in the clear."""
    from pipeline.central.detect.detection_inputs import from_protocol, in_clear
    from pipeline.central.detect.inputs import CentralInputs
    from pipeline.central.match.status_sums import insured_opposition, linking_sums
    from pipeline.trust.convention import load_convention
    from pipeline.trust.manifest import verify_manifest

    export = tmp_path / "parts"
    res = run_cli(*_args(world, world.links_file, export, "--json"))
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["counts"]["liens"] == world.links.height
    assert summary["counts"]["foyers_lies_opposes"] >= 1
    assert stat.S_IMODE(export.stat().st_mode) == 0o700
    shares_file = export / separation.SHARES_FILE.format(provider="caf")
    minima_file = export / separation.MINIMA_FILE.format(provider="caf")
    conv = load_convention(CONVENTION)
    for path, kind in ((shares_file, "parts"), (minima_file, "minima")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        manifest = verify_manifest(path.with_name(path.name.replace(".parquet", ".manifest.json")),
                                   conv)
        assert manifest.content["extra"] == {"export": kind}
        assert manifest.content["file"] == path.name
    shares, minima = pl.read_parquet(shares_file), pl.read_parquet(minima_file)
    assert shares.columns == separation.SHARES_FIELDS
    assert minima.columns == separation.MINIMA_FIELDS
    assert json.loads((world.caf / "audit.jsonl").read_text("utf-8").splitlines()[-1])[
        "event"] == "parts"

    # L, from the exports it receives (no status, no feature read here)
    caf, cpam, links = world.caf_export, world.cpam_export, world.links
    rho = caf.select("foyer", *separation.FACTORS).unique("foyer")
    sums = linking_sums(caf, cpam, rho, cpam.select("handle", *separation.PADS), links)
    opposition = insured_opposition(caf, cpam, links)
    # D, from the parties' files
    households = pl.read_parquet(world.caf / separation.DETECTION_DIR /
                                 separation.DETECTION_FILE.format(provider="caf"))
    insured = pl.read_parquet(world.cpam / separation.DETECTION_DIR /
                              separation.DETECTION_FILE.format(provider="cpam"))
    day = dt.date(2026, 3, 31)
    got = from_protocol(households, sums, shares, insured, minima, opposition, day)
    assert world.caf_clear["handle"].equals(caf["handle"])  # the same persons, in the clear
    want = in_clear(CentralInputs(world.caf_clear, world.cpam_clear, links, day, ()))

    assert got.bits.equals(want.bits)
    assert got.insured_caf.equals(want.insured_caf)
    assert got.insured.equals(want.insured)
    assert got.households.equals(want.households)
    # the check can fail: found households with every bit true and false somewhere, a found
    # household with an opposed linked person, a CAF-opposed household absent
    found = got.bits.filter(pl.col("trouve_cpam"))
    assert found.height > 20
    for b in BITS:
        assert 0 < found[b].sum() < found.height, b
    assert found["opposition_liee"].any()
    opposed = caf.filter(pl.col("opposition"))["foyer"].unique()
    assert not got.bits["foyer"].is_in(opposed.implode()).any()
    # the CAF sends a share for exactly the households L sends a sum for
    sent = sums.filter(pl.col(f"s_{next(iter(BITS))}").is_not_null())["foyer"]
    assert shares["foyer"].to_list() == sent.sort().to_list()


def test_same_inputs_same_files(run_cli, world: World, tmp_path: Path) -> None:
    from pipeline.agency.shares.core import write_shares

    day = dt.date.fromisoformat(TODAY)
    keys = world.caf / "keys"
    a = write_shares("caf", world.caf, keys, CONVENTION, world.links_file, tmp_path / "a",
                     sign=False, today=day)
    b = write_shares("caf", world.caf, keys, CONVENTION, world.links_file, tmp_path / "b",
                     sign=False, today=day)
    assert a.shares_file.read_bytes() == b.shares_file.read_bytes()
    assert a.minima_file.read_bytes() == b.minima_file.read_bytes()
    assert a.shares_manifest is None and not list((tmp_path / "a").glob("*.json"))


def _write(path: Path, frame: pl.DataFrame) -> Path:
    frame.write_parquet(path)
    return path


@pytest.mark.parametrize(("case", "expected"), [
    ("extra_column", ["colonne « foyer »", "colonne inattendue"]),
    ("missing_column", ["colonne « cpam_handle »", "absente"]),
    ("not_text", ["colonne « caf_handle »", "texte"]),
    ("upper_case", ["ligne 4", "colonne « cpam_handle »", "mal formé"]),
    ("short", ["ligne 2", "colonne « caf_handle »", "mal formé"]),
    ("null", ["ligne 3", "colonne « cpam_handle »", "mal formé"]),
    ("unknown_caf", ["ligne 5", "colonne « caf_handle »", "handle inconnu"]),
    ("duplicate", ["ligne 6", "lien en double"]),
])
def test_malformed_links_refused(run_cli, world: World, tmp_path: Path, case: str,
                                 expected: list[str]) -> None:
    links = world.links.head(10)
    col = links["cpam_handle"].to_list()
    frame = {
        "extra_column": links.with_columns(foyer=pl.lit("x")),
        "missing_column": links.select("caf_handle"),
        "not_text": links.with_columns(caf_handle=pl.int_range(10, eager=True)),
        "upper_case": links.with_columns(cpam_handle=pl.Series(
            [*col[:3], col[3].upper(), *col[4:]])),
        "short": links.with_columns(caf_handle=pl.Series(
            [links["caf_handle"][0], links["caf_handle"][1][:31], *links["caf_handle"][2:]])),
        "null": links.with_columns(cpam_handle=pl.Series([*col[:2], None, *col[3:]])),
        "unknown_caf": links.with_columns(caf_handle=pl.Series(
            [*links["caf_handle"][:4], "0" * 32, *links["caf_handle"][5:]])),
        "duplicate": pl.concat([links.head(5), links.slice(2, 1), links.slice(5)]),
    }[case]
    path = _write(tmp_path / "liens_caf.parquet", frame)
    export = tmp_path / "parts"
    res = run_cli(*_args(world, path, export))
    assert res.returncode != 0
    line = _one_line(res.stderr)
    assert "liens_caf.parquet" in line, line
    for words in expected:
        assert words in line, (words, line)
    assert not any(h in line for h in links["caf_handle"].to_list() + col)
    assert not export.exists() and not list(tmp_path.glob(".parts*"))


def test_missing_or_unreadable_links_refused(run_cli, world: World, tmp_path: Path) -> None:
    res = run_cli(*_args(world, tmp_path / "absent.parquet", tmp_path / "parts"))
    assert res.returncode != 0 and "absent.parquet" in _one_line(res.stderr)
    bad = tmp_path / "liens_caf.parquet"
    bad.write_text("caf_handle,cpam_handle\n", "utf-8")
    res = run_cli(*_args(world, bad, tmp_path / "parts"))
    assert res.returncode != 0 and "illisible" in _one_line(res.stderr)
    assert not (tmp_path / "parts").exists()


def test_coverage_provider_refused(run_cli, world: World, tmp_path: Path) -> None:
    res = run_cli(*_args(world, world.links_file, tmp_path / "parts", agency="cpam"))
    assert res.returncode != 0 and "seule la CAF" in _one_line(res.stderr)
    assert not (tmp_path / "parts").exists()


def test_convention_without_shares_fields_refused(run_cli, world: World, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.agency.shares.core import check_convention_allows
    from pipeline.common.errors import PipelineError
    from pipeline.trust.convention import Convention

    with pytest.raises(PipelineError, match="shares_fields sans cpam_handle, a_minima"):
        check_convention_allows(separation.SHARES_FIELDS, "caf", "c.yaml")
    monkeypatch.setattr(Convention, "shares_fields", lambda self, agency: [])
    res = run_cli(*_args(world, world.links_file, tmp_path / "parts"))
    line = _one_line(res.stderr)
    assert res.returncode != 0 and "demo-flers.yaml" in line and "parts" in line
    assert not (tmp_path / "parts").exists()


def test_paths_from_the_territory_file(run_cli, world: World, tmp_path: Path) -> None:
    toml = tmp_path / "territoire.toml"
    toml.write_text(f'[territoire]\nconvention = "{CONVENTION}"\n\n'
                    f'[caf]\ndossier = "{world.caf}"\ncles = "{world.caf / "keys"}"\n', "utf-8")
    res = run_cli("parts", "--config", str(toml), "--liens", str(world.links_file), "--export",
                  str(tmp_path / "p"), "--today", TODAY)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "p" / separation.SHARES_FILE.format(provider="caf")).is_file()


def test_no_link_gives_empty_signed_files(run_cli, world: World, tmp_path: Path) -> None:
    path = _write(tmp_path / "liens_caf.parquet", world.links.clear())
    res = run_cli(*_args(world, path, tmp_path / "p"))
    assert res.returncode == 0, res.stderr
    for name, fields in ((separation.SHARES_FILE, separation.SHARES_FIELDS),
                         (separation.MINIMA_FILE, separation.MINIMA_FIELDS)):
        got = pl.read_parquet(tmp_path / "p" / name.format(provider="caf"))
        assert got.height == 0 and got.columns == fields
    assert len(list((tmp_path / "p").glob("*.manifest.json"))) == 2
