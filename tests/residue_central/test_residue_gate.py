"""The central gate refuses a residue export whose manifest does not hold (the same machinery as
the main exports': pipeline/trust/manifest.py), before any linking."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from pipeline.agency.pseudonymise.core import load_materials
from pipeline.central.match.residue_gate import verify_residue_inputs
from pipeline.common.errors import RefusalError
from pipeline.shared import bloom
from pipeline.shared.contract import EXPORT_SCHEMA_VERSION
from pipeline.trust.demo import install_demo_keys
from pipeline.trust.gate import GateResult
from pipeline.trust.manifest import write_manifest

ROOT = Path(__file__).resolve().parents[2]
CONVENTION = ROOT / "conventions" / "demo-flers.yaml"
TODAY = dt.date(2026, 12, 1)


def _lanes(n: int) -> pl.DataFrame:
    comps = bloom.components_from(nom=["MARTIN", "DURAND"][:n], prenom=["ANNE", "LUC"][:n],
                                  date_naissance=["1970-01-02", "1980-03-04"][:n], sexe=[2, 1][:n])
    return bloom.encode(comps, bytes(range(32)))


def _signed(tmp: Path, agency: str, *, extra_column: bool = False) -> tuple[Path, object]:
    keys = tmp / f"keys_{agency}"
    install_demo_keys(agency, keys)
    mat = load_materials(keys, CONVENTION, agency, TODAY)
    frame = pl.concat([pl.DataFrame({"handle": ["a" * 32, "b" * 32]}), _lanes(2)],
                      how="horizontal")
    if extra_column:
        frame = frame.with_columns(pl.lit("x").alias("nom"))
    folder = tmp / "residu" / agency
    folder.mkdir(parents=True)
    data = folder / bloom.RESIDUE_FILE
    frame.write_parquet(data)
    write_manifest(data, agency=agency, convention_id=mat.convention_id,
                   key_fingerprint=mat.fingerprint, keys_dir=keys,
                   schema_version=EXPORT_SCHEMA_VERSION, reference=mat.reference,
                   extra={"export": "residu"})
    return folder, mat


def _gate(mat) -> GateResult:
    return GateResult(convention_id=mat.convention_id, convention={}, manifests={},
                      key_fingerprint=mat.fingerprint, rules=[], columns={},
                      reference_files=dict(mat.reference["fichiers_reference"]))


def test_valid_residue_passes(tmp_path):
    folder, mat = _signed(tmp_path, "caf")
    manifests = verify_residue_inputs(CONVENTION, {"caf": folder}, _gate(mat))
    assert manifests["caf"].rows == 2


def test_file_changed_after_signature_refused(tmp_path):
    folder, mat = _signed(tmp_path, "caf")
    data = folder / bloom.RESIDUE_FILE
    frame = pl.read_parquet(data).with_columns(pl.col(bloom.LANES[0]) + 1)
    frame.write_parquet(data)
    with pytest.raises(RefusalError, match="SHA-256"):
        verify_residue_inputs(CONVENTION, {"caf": folder}, _gate(mat))


def test_manifest_edited_refused(tmp_path):
    folder, mat = _signed(tmp_path, "caf")
    path = folder / "caf.manifest.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["rows"] = 1
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(RefusalError, match="signature"):
        verify_residue_inputs(CONVENTION, {"caf": folder}, _gate(mat))


def test_other_agency_manifest_refused(tmp_path):
    folder, mat = _signed(tmp_path, "cpam")
    with pytest.raises(RefusalError):
        verify_residue_inputs(CONVENTION, {"caf": folder}, _gate(mat))


def test_other_linkage_key_refused(tmp_path):
    folder, mat = _signed(tmp_path, "caf")
    gate = dataclasses.replace(_gate(mat), key_fingerprint="0" * len(mat.fingerprint))
    with pytest.raises(RefusalError, match="autre clé"):
        verify_residue_inputs(CONVENTION, {"caf": folder}, gate)


def test_column_outside_residue_fields_refused(tmp_path):
    folder, mat = _signed(tmp_path, "caf", extra_column=True)
    with pytest.raises(RefusalError, match="non autorisée"):
        verify_residue_inputs(CONVENTION, {"caf": folder}, _gate(mat))


def test_missing_manifest_refused(tmp_path):
    folder, mat = _signed(tmp_path, "caf")
    (folder / "caf.manifest.json").unlink()
    with pytest.raises(RefusalError, match="manifeste introuvable"):
        verify_residue_inputs(CONVENTION, {"caf": folder}, _gate(mat))
