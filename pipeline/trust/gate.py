"""The central gate: everything `make match` must refuse, checked before anything is written.

Order: convention (present, well-formed, signed by every party, in force, no published demo
material unless it is the demo) -> the files that decide what runs have the hashes the convention
pins, and its parameter table is applied -> one export and one signed manifest per data provider
(hash, signer, convention, contract version, reference files) -> one linkage key for all (equal
fingerprints, and equal to the convention's when it records one) -> columns within each agency's
allow-list -> requested rules within the convention's. Any failure raises RefusalError with a
French message; the caller records it in the audit log and stops.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pipeline.common.errors import RefusalError
from pipeline.shared.contract import EXPORT_SCHEMA_VERSION
from pipeline.trust.convention import Convention, load_convention, verify_convention
from pipeline.trust.keys import refuse_demo_fingerprint
from pipeline.trust.manifest import Manifest, manifest_path_for, verify_manifest
from pipeline.trust.reference import apply_parameter_table, check_reference_files


@dataclasses.dataclass(frozen=True)
class GateResult:
    convention_id: str
    convention: dict[str, Any]
    manifests: dict[str, Manifest]
    key_fingerprint: str
    rules: list[str]
    columns: dict[str, list[str]]
    reference_files: dict[str, str] = dataclasses.field(default_factory=dict)
    parameter_table: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable facts for the report and the audit entry."""
        return {
            "convention_id": self.convention_id,
            "convention": self.convention,
            "parties": self.convention["parties"],
            "signatures": self.convention["signatures"],
            "manifests": {a: m.to_dict() for a, m in sorted(self.manifests.items())},
            "key_fingerprint": self.key_fingerprint,
            "rules": list(self.rules),
            "columns": {a: list(c) for a, c in sorted(self.columns.items())},
            "fichiers_reference": dict(self.reference_files),
            "table_parametres": dict(self.parameter_table),
            "verdict": "accepte",
        }


def _export_file(path: Path, agency: str) -> Path:
    path = Path(path)
    return path / f"{agency}.pseudo.parquet" if path.is_dir() else path


def verify_central_inputs(
    convention: Path, exports: dict[str, Path], rules: list[str], today: dt.date
) -> GateResult:
    """Verify convention, manifests, key fingerprints, columns and rules; refuse on the first fault.

    `exports` maps each agency to its pseudonymised Parquet file or to the folder holding
    <agency>.pseudo.parquet; the manifest is read beside it.
    """
    conv = load_convention(convention)
    verify_convention(conv, today)
    reference_files = check_reference_files(conv)
    parameter_table = apply_parameter_table(conv)

    providers = conv.data_providers
    unexpected = sorted(set(exports) - set(providers))
    if unexpected:
        raise RefusalError(f"fichier reçu d'un organisme qui n'est pas fournisseur de la "
                           f"convention « {conv.id} » : {', '.join(unexpected)}")
    missing = sorted(set(providers) - set(exports))
    if missing:
        raise RefusalError(f"fichier attendu mais non reçu de : {', '.join(missing)}")

    manifests: dict[str, Manifest] = {}
    for agency in providers:
        data_file = _export_file(exports[agency], agency)
        if not data_file.is_file():
            raise RefusalError(f"{data_file} : fichier pseudonymisé de « {agency} » introuvable")
        manifest = verified_manifest(data_file, agency, conv, reference_files)
        if not conv.demo:
            refuse_demo_fingerprint(manifest.key_fingerprint, conv.id, manifest.path)
        manifests[agency] = manifest

    fp = agreed_fingerprint(
        {a: m.key_fingerprint for a, m in manifests.items()}, conv,
        "les fichiers n'ont pas été pseudonymisés avec la même clé de liaison (empreintes "
        "différentes — {detail}) : l'appariement serait impossible ; refaites la "
        "pseudonymisation avec la clé de la convention")

    columns: dict[str, list[str]] = {}
    for agency, manifest in manifests.items():
        try:
            names = list(pq.read_schema(manifest.data_file).names)
        except Exception as exc:
            raise RefusalError(f"{manifest.data_file} : fichier Parquet illisible") from exc
        allowed = set(conv.allowed_fields(agency))
        extra = [c for c in names if c not in allowed]
        if extra:
            raise RefusalError(
                f"{manifest.data_file} : colonne(s) non autorisée(s) par la convention pour "
                f"« {agency} » : {', '.join(sorted(extra))} ; seules les données strictement "
                "nécessaires listées dans la convention peuvent être transmises")
        columns[agency] = names

    refused = [r for r in rules if r not in set(conv.allowed_rules)]
    if refused:
        raise RefusalError(f"règle(s) non autorisée(s) par la convention « {conv.id} » : "
                           f"{', '.join(refused)}")

    return GateResult(convention_id=conv.id, convention=conv.summary(), manifests=manifests,
                      key_fingerprint=fp, rules=list(rules), columns=columns,
                      reference_files=reference_files, parameter_table=parameter_table)


def agreed_fingerprint(fingerprints: dict[str, str], conv: Convention, unequal: str,
                       which: str = "") -> str:
    """The one linkage-key fingerprint every file was made with, the convention's; refuses
    unequal ones (`unequal`, with {detail}: label : fingerprint) or another key than the
    convention's (`which` names the files in the message)."""
    if len(set(fingerprints.values())) != 1:
        detail = ", ".join(f"{label} : {fp}" for label, fp in sorted(fingerprints.items()))
        raise RefusalError(unequal.format(detail=detail))
    fp = next(iter(fingerprints.values()))
    if conv.linkage_key_fingerprint and fp != conv.linkage_key_fingerprint:
        raise RefusalError(
            f"empreinte de clé de liaison {fp}{which} différente de celle déclarée par la "
            f"convention « {conv.id} » ({conv.linkage_key_fingerprint}) : mauvaise clé")
    return fp


def verified_manifest(data_file: Path, agency: str, conv: Convention,
                      reference_files: dict[str, str], *, per_file: bool = False,
                      signers: list[str] | None = None) -> Manifest:
    """The signed manifest next to `data_file`: signature checked, issued by `agency`, describing
    this very file, of this contract version and these reference files (the main export and the
    residue pass through the same checks)."""
    manifest = verify_manifest(manifest_path_for(data_file, agency, per_file=per_file), conv,
                               signers)
    if manifest.agency != agency:
        raise RefusalError(f"{manifest.path} : manifeste de « {manifest.agency} » présenté "
                           f"comme celui de « {agency} »")
    if manifest.data_file.resolve() != data_file.resolve():
        raise RefusalError(f"{manifest.path} : le manifeste décrit {manifest.data_file.name}, "
                           f"pas {data_file.name}")
    check_manifest_contract(manifest, reference_files)
    return manifest


def check_manifest_contract(manifest: Manifest, reference_files: dict[str, str]) -> None:
    """Refuse an export of another contract version, or made under other reference files."""
    version = str(manifest.content.get("schema_version", "?"))
    if version != EXPORT_SCHEMA_VERSION:
        raise RefusalError(
            f"{manifest.path} ({manifest.agency}) : export au format de contrat {version}, ce run "
            f"attend le format {EXPORT_SCHEMA_VERSION} : mettre à jour l'outil à l'organisme")
    signed = manifest.content.get("fichiers_reference")
    if not isinstance(signed, dict):
        raise RefusalError(
            f"{manifest.path} : le manifeste de « {manifest.agency} » ne dit pas avec quels "
            "fichiers de référence l'export a été fait (« fichiers_reference » absent)")
    changed = sorted(k for k in set(signed) | set(reference_files)
                     if signed.get(k) != reference_files.get(k))
    if changed:
        raise RefusalError(
            f"{manifest.path} : « {manifest.agency} » a pseudonymisé avec d'autres fichiers de "
            f"référence que ceux de ce run ({', '.join(changed)})")
