"""The detecting operator's gate (docs/SEPARATION.md, contract 6: pipeline/shared/separation.py):
everything `detecter` must refuse, checked before anything is computed.

Order: convention (present, well-formed, signed by every party, in force) naming a detecting
operator -> the files that decide what runs have the hashes the convention pins, and its
parameter table is applied -> one detection file per data provider of the convention and the
CAF's parts and minima, each with the agency's signed manifest (hash, signer, convention,
contract version, reference files), and the linking operator's two files, each with its manifest
signed by the convention's linking operator -> one linkage key for all (equal fingerprints,
equal to the convention's) -> each agency file's columns within the convention's allow-list and
exactly the contract's -> the linking operator's two files with exactly their contract's columns
-> requested rules within the convention's. Any failure raises RefusalError with a French
message naming the file; the caller records it in the audit log and stops.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pipeline.common.errors import RefusalError
from pipeline.shared import separation
from pipeline.shared.providers import PROVIDERS, benefits_provider
from pipeline.trust.convention import Convention, load_verified_convention
from pipeline.trust.gate import agreed_fingerprint, verified_manifest
from pipeline.trust.keys import refuse_demo_fingerprint
from pipeline.trust.manifest import Manifest
from pipeline.trust.reference import apply_parameter_table, check_reference_files

PARTS, MINIMA = "parts", "minima"  # keys of the CAF's two per-file manifests
SUMS, OPPOSITION = "liaison_sommes", "liaison_oppositions"  # the linking operator's files


@dataclasses.dataclass(frozen=True)
class DetectionFiles:
    """Where each file of the detecting operator is (contract 6 names)."""

    detection: dict[str, Path]  # provider -> <provider>.detection.parquet
    benefits: str  # the provider whose parts these are (the CAF)
    shares: Path  # the CAF's caf.parts.parquet
    minima: Path  # the CAF's caf.minima.parquet
    sums: Path  # L's sommes.parquet
    opposition: Path  # L's oppositions.parquet

    def labelled(self) -> dict[str, Path]:
        """Every input under the label the audit entry gives it."""
        return {**{f"{a}_detection": p for a, p in sorted(self.detection.items())},
                f"{self.benefits}_{PARTS}": self.shares,
                f"{self.benefits}_{MINIMA}": self.minima,
                SUMS: self.sums, OPPOSITION: self.opposition}


def locate(detection: Mapping[str, Path], handoff: Path, parts: Path) -> DetectionFiles:
    """The files in the folders as transmitted (a provider's detection folder may also be given
    as its file); the parts are the benefits-side provider's (the CAF's)."""
    def detection_file(agency: str, path: Path) -> Path:
        path = Path(path)
        return path / separation.DETECTION_FILE.format(provider=agency) if path.is_dir() else path

    files = {a: detection_file(a, p) for a, p in detection.items()}
    benefits = benefits_provider(PROVIDERS)  # the registry has one benefits-side provider
    parts = Path(parts)
    handoff = Path(handoff)
    return DetectionFiles(
        detection=files,
        benefits=benefits,
        shares=parts / separation.SHARES_FILE.format(provider=benefits),
        minima=parts / separation.MINIMA_FILE.format(provider=benefits),
        sums=handoff / separation.SUMS_FILE,
        opposition=handoff / separation.OPPOSITION_FILE,
    )


@dataclasses.dataclass(frozen=True)
class DetectionGate:
    convention_id: str
    convention: dict[str, Any]
    detectors: list[str]
    providers: list[str]
    benefits: str
    manifests: dict[str, Manifest]  # provider, caf_parts, caf_minima
    key_fingerprint: str
    rules: list[str]
    reference_files: dict[str, str]
    parameter_table: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable facts for the audit entry and run.json."""
        return {"convention_id": self.convention_id, "convention": self.convention,
                "parties": self.convention["parties"],
                "signatures": self.convention["signatures"],
                "operateurs_detection": self.detectors,
                "manifests": {k: m.to_dict() for k, m in sorted(self.manifests.items())},
                "key_fingerprint": self.key_fingerprint, "rules": list(self.rules),
                "fichiers_reference": dict(self.reference_files),
                "table_parametres": dict(self.parameter_table), "verdict": "accepte"}


def _columns(path: Path) -> list[str]:
    try:
        return list(pq.read_schema(path).names)
    except Exception as exc:
        raise RefusalError(f"{path} : fichier Parquet illisible") from exc


def check_columns(path: Path, names: list[str], allowed: list[str], contract: list[str],
                  who: str) -> None:
    """Refuse a column outside the convention's allow-list (`allowed`: None for a file the
    convention does not list, such as L's), then any difference from the contract's columns."""
    if allowed is not None:
        extra = sorted(set(names) - set(allowed))
        if extra:
            raise RefusalError(
                f"{path} : colonne(s) non autorisée(s) par la convention pour « {who} » : "
                f"{', '.join(extra)} ; seules les données strictement nécessaires listées dans "
                "la convention peuvent être transmises")
    missing = [c for c in contract if c not in names]
    extra = sorted(set(names) - set(contract))
    if missing or extra:
        detail = "; ".join(part for part in (
            f"manquante(s) : {', '.join(missing)}" if missing else "",
            f"hors contrat : {', '.join(extra)}" if extra else "") if part)
        raise RefusalError(f"{path} : colonnes différentes de celles du contrat 6 "
                           f"(pipeline/shared/separation.py) — {detail}")


def _detector(conv: Convention) -> list[str]:
    if not conv.detectors:
        raise RefusalError(
            f"{conv.path} : la convention « {conv.id} » ne désigne aucun opérateur de détection "
            f"(rôle « {separation.ROLE_DETECTOR} ») : la détection séparée n'est pas prévue par "
            "les parties")
    return conv.detectors


def verify_detection_inputs(convention: Path, files: DetectionFiles, rules: list[str] | None,
                            today: dt.date) -> DetectionGate:
    """Verify convention, manifests, key fingerprints, columns and rules; refuse on the first
    fault (RefusalError, French, naming the file)."""
    conv = load_verified_convention(convention, today)
    detectors = _detector(conv)
    reference_files = check_reference_files(conv)
    parameter_table = apply_parameter_table(conv)

    providers = conv.data_providers
    unexpected = sorted(set(files.detection) - set(providers))
    if unexpected:
        raise RefusalError(f"fichier de détection reçu d'un organisme qui n'est pas fournisseur "
                           f"de la convention « {conv.id} » : {', '.join(unexpected)}")
    missing = sorted(set(providers) - set(files.detection))
    if missing:
        raise RefusalError(f"fichier de détection attendu mais non reçu de : "
                           f"{', '.join(missing)}")
    benefits = benefits_provider(providers)

    signed: dict[str, tuple[Path, str, bool]] = {
        **{a: (files.detection[a], a, False) for a in providers},
        f"{benefits}_{PARTS}": (files.shares, benefits, True),
        f"{benefits}_{MINIMA}": (files.minima, benefits, True),
    }
    manifests: dict[str, Manifest] = {}
    for label, (path, agency, per_file) in signed.items():
        if not path.is_file():
            raise RefusalError(f"{path} : fichier de « {agency} » pour l'opérateur de détection "
                               "introuvable")
        manifest = verified_manifest(path, agency, conv, reference_files, per_file=per_file)
        if not conv.demo:
            refuse_demo_fingerprint(manifest.key_fingerprint, conv.id, manifest.path)
        manifests[label] = manifest

    # the linking operator's hand-off, signed by the convention's linking operator
    operators = conv.operators
    if len(operators) != 1:
        raise RefusalError(f"la convention « {conv.id} » doit désigner un seul opérateur "
                           f"d'appariement ({', '.join(operators) or 'aucun'}) : ses sommes "
                           "masquées ne peuvent pas être vérifiées")
    for label, path in ((SUMS, files.sums), (OPPOSITION, files.opposition)):
        if not path.is_file():
            raise RefusalError(f"{path} : fichier de l'opérateur d'appariement introuvable")
        manifests[label] = verified_manifest(path, operators[0], conv, reference_files,
                                             per_file=True, signers=operators)

    fp = agreed_fingerprint(
        {str(m.path): m.key_fingerprint for m in manifests.values()}, conv,
        "les fichiers de l'opérateur de détection n'ont pas été établis avec la même clé de "
        "liaison (empreintes différentes — {detail}) : les sommes masquées ne se "
        "démasqueraient pas ; refaites-les avec la clé de la convention",
        " des fichiers de détection")

    for agency in providers:
        path = files.detection[agency]
        check_columns(path, _columns(path), conv.detection_fields(agency),
                      separation.detection_fields(agency == benefits), agency)
    for path, contract in ((files.shares, separation.SHARES_FIELDS),
                           (files.minima, separation.MINIMA_FIELDS)):
        check_columns(path, _columns(path), conv.shares_fields(benefits), contract, benefits)
    for path, contract in ((files.sums, separation.SUMS_FIELDS),
                           (files.opposition, separation.OPPOSITION_FIELDS)):
        check_columns(path, _columns(path), None, contract, "opérateur d'appariement")

    rule_ids = list(rules or conv.allowed_rules)
    refused = [r for r in rule_ids if r not in set(conv.allowed_rules)]
    if refused:
        raise RefusalError(f"règle(s) non autorisée(s) par la convention « {conv.id} » : "
                           f"{', '.join(refused)}")
    return DetectionGate(convention_id=conv.id, convention=conv.summary(), detectors=detectors,
                         providers=providers, benefits=benefits, manifests=manifests,
                         key_fingerprint=fp, rules=rule_ids, reference_files=reference_files,
                         parameter_table=parameter_table)
