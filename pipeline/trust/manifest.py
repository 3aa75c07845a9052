"""Signed manifests: what an agency vouches for when its pseudonymised file leaves its premises.

The manifest sits beside the data file as <agency>.manifest.json. It carries the file's SHA-256
and row count, the schema version, the convention id, the linkage-key fingerprint, the creation
time and the tool version, signed by the agency's Ed25519 key over the canonical form of every
other field (pipeline.trust.canonical, domain "nonrecours/v1/manifest").
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pipeline import __version__
from pipeline.common.errors import PipelineError, RefusalError
from pipeline.common.files import sha256_file, write_text
from pipeline.trust.canonical import (
    DOMAIN_MANIFEST,
    key_id,
    now_utc,
    public_key_from_b64,
    sign,
    utc_iso,
    verify_signature,
)
from pipeline.trust.convention import Convention
from pipeline.trust.keys import check_agency, load_private_ed25519

FORMAT = "nonrecours/manifest/v1"


@dataclasses.dataclass(frozen=True)
class Manifest:
    path: Path
    data_file: Path
    content: dict[str, Any]

    @property
    def agency(self) -> str:
        return str(self.content["agency"])

    @property
    def sha256(self) -> str:
        return str(self.content["sha256"])

    @property
    def rows(self) -> int:
        return int(self.content["rows"])

    @property
    def key_fingerprint(self) -> str:
        return str(self.content["key_fingerprint"])

    @property
    def convention_id(self) -> str:
        return str(self.content["convention_id"])

    def to_dict(self) -> dict[str, Any]:
        """What the report shows: every signed field plus the file name (no signature bytes)."""
        out = {k: v for k, v in self.content.items() if k != "signature"}
        out["signature"] = "valide"
        return out


def manifest_path_for(data_file: Path, agency: str, *, per_file: bool = False) -> Path:
    """`<agency>.manifest.json` beside the file; `per_file` (a folder holding several signed
    files, such as the CAF's shares and minima): `<file name without .parquet>.manifest.json`."""
    data_file = Path(data_file)
    if per_file:
        return data_file.parent / f"{data_file.name.removesuffix('.parquet')}.manifest.json"
    return data_file.parent / f"{agency}.manifest.json"


def parquet_rows(path: Path) -> int:
    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except Exception as exc:
        raise PipelineError(f"{path} : fichier Parquet illisible") from exc


def write_manifest(
    data_file: Path,
    *,
    agency: str,
    convention_id: str,
    key_fingerprint: str,
    keys_dir: Path,
    schema_version: str,
    extra: dict | None = None,
    reference: dict | None = None,
    per_file: bool = False,
) -> Path:
    """Write and sign <agency>.manifest.json beside `data_file`; returns its path.

    `reference` (pipeline.trust.agency: fichiers_reference, table_parametres) records the hashes
    of the files that decided what ran at the agency, under the agency's signature."""
    check_agency(agency)
    data_file = Path(data_file)
    if not data_file.is_file():
        raise PipelineError(f"{data_file} : fichier à déclarer introuvable")
    private = load_private_ed25519(Path(keys_dir), agency)
    content: dict[str, Any] = {
        "format": FORMAT,
        "agency": agency,
        "file": data_file.name,
        "sha256": sha256_file(data_file),
        "rows": parquet_rows(data_file),
        "schema_version": str(schema_version),
        "convention_id": convention_id,
        "key_fingerprint": key_fingerprint,
        "created_at": utc_iso(now_utc()),
        "tool_version": __version__,
        "signer_key_id": key_id(private.public_key()),
        "extra": dict(extra or {}),
        **dict(reference or {}),
    }
    content["signature"] = sign(private, DOMAIN_MANIFEST,
                                {k: v for k, v in content.items() if k != "signature"})
    target = manifest_path_for(data_file, agency, per_file=per_file)
    write_text(target, json.dumps(content, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return target


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("clé en double")
    return dict(pairs)


def read_manifest(manifest_path: Path) -> dict[str, Any]:
    manifest_path = Path(manifest_path)
    if not manifest_path.is_file():
        raise RefusalError(f"{manifest_path} : manifeste introuvable ; un fichier sans manifeste "
                           "signé est refusé")
    try:
        doc = json.loads(manifest_path.read_text("utf-8"), object_pairs_hook=_unique_keys)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RefusalError(f"{manifest_path} : manifeste illisible (JSON invalide)") from exc
    needed = {"format", "agency", "file", "sha256", "rows", "convention_id", "key_fingerprint"}
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not needed <= set(doc):
        raise RefusalError(f"{manifest_path} : manifeste mal formé")
    return doc


def verify_manifest(manifest_path: Path, conv: Convention,
                    signers: list[str] | None = None) -> Manifest:
    """Refuse unless the manifest is signed by its agency's key in the convention and its file
    still has the signed hash. `signers`: the parties allowed to sign it (default: the data
    providers; the linking operator's hand-off: the operators)."""
    manifest_path = Path(manifest_path)
    doc = read_manifest(manifest_path)
    agency = str(doc["agency"])
    signature = doc.get("signature")
    if not signature:
        raise RefusalError(f"{manifest_path} : manifeste de « {agency} » non signé")
    party = conv.parties.get(agency)
    if signers is not None and (party is None or agency not in signers):
        raise RefusalError(f"{manifest_path} : le signataire « {agency} » n'est pas "
                           f"{', '.join(signers) or 'une partie attendue'} dans la convention "
                           f"« {conv.id} »")
    if party is None or (signers is None and agency not in conv.data_providers):
        raise RefusalError(f"{manifest_path} : le signataire « {agency} » n'est pas une partie "
                           f"fournisseuse de données de la convention « {conv.id} »")
    if doc.get("signer_key_id") and doc["signer_key_id"] != party.key_id:
        raise RefusalError(
            f"{manifest_path} : manifeste signé par une clé ({doc['signer_key_id']}) qui n'est pas "
            f"celle de « {agency} » dans la convention ({party.key_id}) : signataire non reconnu")
    content = {k: v for k, v in doc.items() if k != "signature"}
    if not verify_signature(public_key_from_b64(party.ed25519), DOMAIN_MANIFEST, content,
                            str(signature)):
        raise RefusalError(f"{manifest_path} : signature du manifeste de « {agency} » invalide "
                           "(manifeste modifié après signature ou mauvaise clé)")
    if doc["convention_id"] != conv.id:
        raise RefusalError(f"{manifest_path} : manifeste établi pour la convention "
                           f"« {doc['convention_id']} », pas pour « {conv.id} »")
    data_file = manifest_path.parent / Path(str(doc["file"])).name
    if not data_file.is_file():
        raise RefusalError(f"{data_file} : fichier déclaré par le manifeste introuvable")
    actual = sha256_file(data_file)
    if actual != doc["sha256"]:
        raise RefusalError(
            f"{data_file} : empreinte SHA-256 différente de celle signée dans le manifeste de "
            f"« {agency} » : le fichier a été modifié ou remplacé après signature")
    if parquet_rows(data_file) != int(doc["rows"]):
        raise RefusalError(f"{manifest_path} : nombre de lignes déclaré ({doc['rows']}) différent "
                           "de celui du fichier")
    return Manifest(path=manifest_path, data_file=data_file, content=doc)
