"""The central gate for the residue exports (staged exchange): the same checks as the main
exports' (pipeline/trust/gate.py), on each agency's `residu.parquet` and its signed manifest.

Refused (RefusalError, French, recorded in the audit log by the caller): a provider outside the
convention, a missing file or manifest, a manifest not signed by the agency's key of the
convention, a file changed after signature, another contract version or other reference files,
another linkage key than the main exports', a column outside the convention's `residue_fields`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pyarrow.parquet as pq

from pipeline.common.errors import RefusalError
from pipeline.shared.bloom import RESIDUE_FILE, RESIDUE_LEAKAGE
from pipeline.trust.convention import load_convention
from pipeline.trust.gate import GateResult, verified_manifest
from pipeline.trust.manifest import Manifest


def residue_file(path: Path) -> Path:
    """A residue folder (as transmitted) or the file itself."""
    path = Path(path)
    return path / RESIDUE_FILE if path.is_dir() else path


def residue_leakage_file(path: Path, agency: str) -> Path:
    """The agency's attack figures on its residue, received with it."""
    return residue_file(path).parent / RESIDUE_LEAKAGE.format(provider=agency)


def verify_residue_inputs(convention: Path, residue: Mapping[str, Path],
                          gate: GateResult) -> dict[str, Manifest]:
    """Verify every residue export against the convention and the main exports' gate."""
    conv = load_convention(convention)
    manifests: dict[str, Manifest] = {}
    for agency in sorted(residue):
        if agency not in conv.data_providers:
            raise RefusalError(f"résidu reçu d'un organisme qui n'est pas fournisseur de la "
                               f"convention « {conv.id} » : {agency}")
        data_file = residue_file(residue[agency])
        if not data_file.is_file():
            raise RefusalError(f"{data_file} : résidu de « {agency} » introuvable")
        manifest = verified_manifest(data_file, agency, conv, gate.reference_files)
        if manifest.key_fingerprint != gate.key_fingerprint:
            raise RefusalError(
                f"{manifest.path} : résidu de « {agency} » encodé avec une autre clé de liaison "
                f"({manifest.key_fingerprint}) que les fichiers pseudonymisés "
                f"({gate.key_fingerprint})")
        allowed = set(conv.residue_fields(agency))
        try:
            names = list(pq.read_schema(data_file).names)
        except Exception as exc:
            raise RefusalError(f"{data_file} : fichier Parquet illisible") from exc
        extra = sorted(set(names) - allowed)
        if extra:
            raise RefusalError(
                f"{data_file} : colonne(s) du résidu non autorisée(s) par la convention pour "
                f"« {agency} » : {', '.join(extra)}")
        manifests[agency] = manifest
    return manifests
