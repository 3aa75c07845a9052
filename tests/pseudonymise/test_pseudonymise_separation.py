"""Export contract 6 at the agencies (pipeline/shared/separation.py): the export for the linking
operator carries the masked sums' pads (coverage side) or factors (CAF), opposed households
included; `pseudonymise` writes the detection file for the detecting operator, exactly the
declared columns, signed and owner-only, or refuses before writing anything when the convention
does not allow them; the CAF keeps its local file for the `parts` step."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import polars as pl
import pytest
from helpers_pseudonymise import KEY

from pipeline.agency.pseudonymise import status_masks
from pipeline.agency.pseudonymise.core import Materials, pseudonymise
from pipeline.agency.pseudonymise.synthetic import ingested
from pipeline.common.errors import PipelineError
from pipeline.common.tables import write_parquet
from pipeline.shared import separation
from pipeline.shared.masked_sums import BITS, MASK_INFO, P, person_bits

REPO = Path(__file__).resolve().parents[2]
CONVENTION = REPO / "conventions" / "demo-flers.yaml"
TODAY = "2026-11-22"


def _materials(detection: list[str] | None = None) -> Materials:
    return Materials(KEY, "stand-in", "test", None, None, True, detection_fields=detection)


def _work(root: Path, agency: str) -> tuple[Path, Path]:
    work = root / agency
    df = ingested(agency, 200, seed=4)
    write_parquet(df, work / "ingested.parquet", sort_by=["line"], private=True)
    opp = root / f"opposition_{agency}.csv"
    if agency == "caf":
        ids = df["matricule"].unique(maintain_order=True).head(2).to_list()
        opp.write_text("matricule;nir\n" + "".join(f"{m};\n" for m in ids), "utf-8")
    else:
        ids = df["nir"].drop_nulls().head(2).to_list()
        opp.write_text("nir\n" + "".join(f"{n}\n" for n in ids), "utf-8")
    return work, opp


def _run(root: Path, agency: str, materials: Materials | None = None, **kw: object):
    work, opp = _work(root, agency)
    return pseudonymise(agency, work, work / "keys", CONVENTION, work / "export", seed=3,
                        opposition=opp, materials=materials or _materials(), sign=False, **kw)


@pytest.mark.parametrize("agency", ["caf", "cpam"])
def test_export_carries_the_masked_columns_opposed_households_included(
        tmp_path: Path, agency: str) -> None:
    res = _run(tmp_path, agency)
    export = pl.read_parquet(res.export_file)
    benefits = agency == "caf"
    masked = separation.linker_fields(benefits)
    assert [c for c in export.columns if c.startswith(("c_", "rho_"))] == masked
    opposed = export.filter(pl.col("opposition"))
    assert opposed.height >= 2 and export.filter(~pl.col("opposition")).height > 100
    assert export.select(masked).null_count().row(0) == (0,) * len(masked)
    if benefits:  # one factor per household and bit, the PRF of its foyer handle
        rho = status_masks.factors(export["foyer"], KEY)
        want = export.select("foyer").join(rho, on="foyer", how="left", maintain_order="left")
        assert export.select(masked).equals(want.select(masked))
        assert export.select(pl.col(masked).n_unique()).row(0) == \
            (export["foyer"].n_unique(),) * len(masked)
    else:  # pad minus the PRF of the handle = the bit of the status the export shows; an
        # opposed person's status never leaves, not even masked (its row reads « unreadable »)
        assert opposed["statut_css"].is_null().all()
        bits = person_bits(export)
        for b in BITS:
            m = status_masks.prf(export["handle"], KEY, MASK_INFO + b, P)
            got = (export[f"c_{b}"].cast(pl.Int64) - m.cast(pl.Int64)) % P
            assert got.to_list() == bits[b].cast(pl.Int64).to_list(), b
        assert opposed.select(person_bits(opposed)["css_illisible"].all()).item()


@pytest.mark.parametrize("agency", ["caf", "cpam"])
def test_detection_file_has_exactly_the_declared_columns(tmp_path: Path, agency: str) -> None:
    res = _run(tmp_path, agency)
    work = tmp_path / agency
    assert res.detection_file == (work / separation.DETECTION_DIR /
                                  separation.DETECTION_FILE.format(provider=agency))
    assert stat.S_IMODE(res.detection_file.stat().st_mode) == 0o600
    detection = pl.read_parquet(res.detection_file)
    assert detection.columns == separation.detection_fields(agency == "caf")
    export = pl.read_parquet(res.export_file)
    if agency == "caf":  # one row per household, no size; opposed ones keep their flag only
        assert detection.height == export["foyer"].n_unique()
        opposed = detection.filter(pl.col("opposition"))
        assert opposed.height == 2
        assert opposed.select("type_foyer", "a_rsa").null_count().row(0) == (2, 2)
        local = pl.read_parquet(res.local_file)
        assert res.local_file == work / separation.LOCAL_FILE
        assert stat.S_IMODE(res.local_file.stat().st_mode) == 0o600
        assert local.columns == separation.LOCAL_FIELDS
        assert local["handle"].to_list() == export["handle"].to_list()
        assert local.select("foyer", "a_rsa", "a_ppa").equals(
            export.select("foyer", "a_rsa", "a_ppa"))
    else:  # the insured persons with a free CSS in force
        want = export.filter(pl.col("css_gratuite_en_cours")).select(detection.columns)
        assert detection.height > 0 and detection.equals(want.sort("handle"))
        assert res.local_file is None and not (work / separation.LOCAL_FILE).exists()


def test_same_inputs_same_files(tmp_path: Path) -> None:
    a, b = _run(tmp_path / "a", "caf"), _run(tmp_path / "b", "caf")
    for attr in ("export_file", "detection_file", "local_file"):
        assert getattr(a, attr).read_bytes() == getattr(b, attr).read_bytes(), attr


def test_convention_without_a_detection_column_refused_before_writing(tmp_path: Path) -> None:
    fields = [c for c in separation.HOUSEHOLD_FIELDS if c != "a_rsa"]
    with pytest.raises(PipelineError) as err:
        _run(tmp_path, "caf", _materials(fields))
    message = str(err.value)
    assert "demo-flers.yaml" in message and "detection_fields sans a_rsa" in message
    work = tmp_path / "caf"
    assert sorted(p.name for p in work.iterdir()) == ["ingested.parquet"]


@pytest.mark.parametrize("agency", ["caf", "cpam"])
def test_convention_without_detection_fields_writes_no_detection_file(tmp_path: Path, capsys,
                                                                     agency: str) -> None:
    res = _run(tmp_path, agency, _materials([]))
    assert res.detection_file is None and res.detection_manifest is None
    assert not (tmp_path / agency / separation.DETECTION_DIR).exists()
    assert res.export_file.is_file()
    assert "aucun fichier de détection" in capsys.readouterr().err
    # the CAF keeps its local file either way (its `parts` step reads nothing else)
    assert (res.local_file is not None) == (agency == "caf")


def test_cli_writes_a_signed_private_detection_folder(run_cli, tmp_path: Path) -> None:
    from pipeline.trust.convention import load_convention
    from pipeline.trust.demo import install_demo_keys
    from pipeline.trust.manifest import verify_manifest

    work, opp = _work(tmp_path, "caf")
    install_demo_keys("caf", work / "keys", source=REPO / "sample_data" / "keys")
    detection = tmp_path / "pour_d"
    args = ["pseudonymise", "--agency", "caf", "--workdir", str(work), "--keys",
            str(work / "keys"), "--convention", str(CONVENTION), "--opposition", str(opp),
            "--seed", "1", "--today", TODAY, "--detection", str(detection)]
    res = run_cli(*args)
    assert res.returncode == 0, res.stderr
    assert stat.S_IMODE(detection.stat().st_mode) == 0o700
    conv = load_convention(CONVENTION)
    manifest = verify_manifest(detection / "caf.manifest.json", conv)
    export_manifest = verify_manifest(work / "export" / "caf.manifest.json", conv)
    assert manifest.content["extra"] == {"export": "detection"}
    assert manifest.content["file"] == separation.DETECTION_FILE.format(provider="caf")
    for key in ("convention_id", "key_fingerprint", "fichiers_reference"):
        assert manifest.content[key] == export_manifest.content[key], key
    got = pl.read_parquet(detection / manifest.content["file"])
    assert set(got.columns) <= set(conv.detection_fields("caf"))
    export = pl.read_parquet(work / "export" / "caf.pseudo.parquet")
    assert set(separation.FACTORS) <= set(export.columns)
    assert not (work / separation.DETECTION_DIR).exists()
    # the detection folder is an output like the export: kept unless --remplacer
    again = run_cli(*args)
    assert again.returncode != 0 and "--remplacer" in again.stderr
    assert run_cli(*args, "--remplacer").returncode == 0


def test_msa_file_goes_through_the_coverage_contract() -> None:
    from pipeline.agency.pseudonymise.core import build_files

    df = ingested("cpam", 60, seed=2)
    built = build_files(df, "msa", KEY, seed=1)
    assert set(separation.PADS) <= set(built.export.columns)
    assert built.detection.columns == separation.INSURED_FIELDS and built.local is None


def test_materials_carry_the_conventions_detection_fields(tmp_path: Path) -> None:
    from pipeline.agency.pseudonymise.core import load_materials
    from pipeline.trust.convention import load_convention
    from pipeline.trust.demo import install_demo_keys

    conv = load_convention(CONVENTION)
    assert conv.detection_fields("caf") == separation.HOUSEHOLD_FIELDS
    assert conv.detection_fields("cpam") == separation.INSURED_FIELDS
    keys = tmp_path / "keys"
    install_demo_keys("cpam", keys, source=REPO / "sample_data" / "keys")
    mat = load_materials(keys, CONVENTION, "cpam", dt.date.fromisoformat(TODAY))
    assert mat.detection_fields == separation.INSURED_FIELDS
