"""The signed convention: who exchanges what, why, under which legal basis, until when.

A convention is a YAML file under conventions/. Its *content* is everything except the
`signatures` mapping; the canonical form of the content (pipeline.trust.canonical: JSON, sorted
keys, UTF-8, dates ISO) prefixed by "nonrecours/v1/convention\\n" is what each party signs with its
Ed25519 key. Every party listed under `parties` must sign; changing one byte of the content
invalidates every signature. Nothing runs centrally without a verified convention.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import yaml

from pipeline.common import yaml_safe
from pipeline.common.errors import PipelineError, RefusalError
from pipeline.common.files import write_text
from pipeline.shared.providers import COVERAGE, PROVIDERS, benefits_provider, modele, on_side
from pipeline.trust.canonical import (
    DOMAIN_CONVENTION,
    key_id,
    public_key_b64,
    public_key_from_b64,
    sign,
    verify_signature,
)

FORMAT = "nonrecours/convention/v1"
ROLE_PROVIDER = "fournisseur_donnees"
ROLE_OPERATOR = "operateur_appariement"
ROLE_RECIPIENT = "destinataire_listes"
ROLE_DETECTOR = "operateur_detection"  # the detecting operator (pipeline/shared/separation.py)
# the parties besides the data providers: linking operator, detecting operator, list recipient
LINKER_PARTY, DETECTOR_PARTY = "operateur", "detection"  # the demo's and init's party ids
OTHER_PARTIES = (LINKER_PARTY, DETECTOR_PARTY, "ccas")
# Raw identifiers and contact data never leave an agency (data minimisation, RGPD art. 5.1.c;
# docs/LEGAL.md): a convention that would let a
# provider send one of these columns to the central operator is refused outright.
FORBIDDEN_CENTRAL_FIELDS = frozenset({
    "nir", "nir_beneficiaire", "nir_ouvrant_droit", "matricule", "nom", "nom_naissance",
    "nom_usage", "prenom", "prenoms", "prenom1", "prenom2", "date_naissance", "adresse",
    "telephone", "email", "code_postal", "line",
})
REQUIRED = ("format", "id", "demo", "title", "purpose", "legal_basis", "territory", "parties",
            "fields", "contact_fields", "rules", "retention_days", "valid_from", "valid_until")


@dataclasses.dataclass(frozen=True)
class Party:
    id: str
    name: str
    roles: tuple[str, ...]
    ed25519: str  # base64 raw public key

    @property
    def key_id(self) -> str:
        return key_id(public_key_from_b64(self.ed25519))


@dataclasses.dataclass(frozen=True)
class Convention:
    """A parsed convention; `content` is what is signed, `signatures` maps party -> base64."""

    path: Path
    content: dict[str, Any]
    signatures: dict[str, str]

    @property
    def id(self) -> str:
        return str(self.content["id"])

    @property
    def demo(self) -> bool:
        return bool(self.content["demo"])

    @property
    def title(self) -> str:
        return str(self.content["title"])

    @property
    def parties(self) -> dict[str, Party]:
        return {
            pid: Party(id=pid, name=str(p["name"]), roles=tuple(p["roles"]),
                       ed25519=str(p["ed25519"]))
            for pid, p in self.content["parties"].items()
        }

    @property
    def data_providers(self) -> list[str]:
        return sorted(pid for pid, p in self.parties.items() if ROLE_PROVIDER in p.roles)

    @property
    def operators(self) -> list[str]:
        return sorted(pid for pid, p in self.parties.items() if ROLE_OPERATOR in p.roles)

    @property
    def detectors(self) -> list[str]:
        return sorted(pid for pid, p in self.parties.items() if ROLE_DETECTOR in p.roles)

    def detection_fields(self, agency: str) -> list[str]:
        """Columns of the agency's detection file for the detecting operator (contract 6,
        pipeline/shared/separation.py); empty when the convention has no separated detection."""
        return list((self.content.get("detection_fields") or {}).get(agency, []))

    def shares_fields(self, agency: str) -> list[str]:
        """Columns of the CAF's shares and minima files for the detecting operator."""
        return list((self.content.get("shares_fields") or {}).get(agency, []))

    def allowed_fields(self, agency: str) -> list[str]:
        """Columns the agency may send to the central operator (strict allow-list)."""
        return list(self.content["fields"].get(agency, []))

    def residue_fields(self, agency: str) -> list[str]:
        """Columns of the residue export (pipeline/shared/bloom.py, docs/RESIDUE.md) the agency
        may send; empty when the convention has no `residue_fields` (no residue exchange)."""
        return list((self.content.get("residue_fields") or {}).get(agency, []))

    def contact_fields(self, agency: str) -> list[str]:
        """Contact columns the agency may keep in its handles table and put in CCAS lists."""
        return list(self.content["contact_fields"].get(agency, []))

    @property
    def allowed_rules(self) -> list[str]:
        return list(self.content["rules"])

    @property
    def retention_days(self) -> int:
        return int(self.content["retention_days"])

    @property
    def valid_from(self) -> dt.date:
        return _as_date(self.content["valid_from"])

    @property
    def valid_until(self) -> dt.date:
        return _as_date(self.content["valid_until"])

    @property
    def linkage_key_fingerprint(self) -> str | None:
        value = self.content.get("linkage_key_fingerprint")
        return str(value) if value else None

    def signature_status(self) -> dict[str, str]:
        """Per party: 'valide', 'absente' or 'invalide' (content altered or wrong key)."""
        status = {}
        for pid, party in sorted(self.parties.items()):
            sig = self.signatures.get(pid)
            if not sig:
                status[pid] = "absente"
            elif verify_signature(public_key_from_b64(party.ed25519), DOMAIN_CONVENTION,
                                  self.content, sig):
                status[pid] = "valide"
            else:
                status[pid] = "invalide"
        return status

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable facts for reports (no key material beyond public key ids)."""
        return {
            "id": self.id, "title": self.title, "demo": self.demo,
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat(),
            "retention_days": self.retention_days,
            "legal_basis": list(self.content["legal_basis"]),
            "purpose": self.content["purpose"],
            "parties": {pid: {"name": p.name, "roles": list(p.roles), "key_id": p.key_id}
                        for pid, p in sorted(self.parties.items())},
            "signatures": self.signature_status(),
            "rules": self.allowed_rules,
            "linkage_key_fingerprint": self.linkage_key_fingerprint,
            "fichiers_reference": dict(self.content.get("fichiers_reference") or {}),
        }


class _UniqueKeyLoader(yaml_safe.SafeLoader):  # type: ignore[misc]
    """SafeLoader that refuses duplicate keys: a reader must see exactly what was signed."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"clé « {key} » en double", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _structure_errors(doc: Any) -> list[str]:
    if not isinstance(doc, dict):
        return ["le document n'est pas un dictionnaire YAML"]
    errors = [f"champ obligatoire « {k} » absent" for k in REQUIRED if k not in doc]
    if errors:
        return errors
    if doc["format"] != FORMAT:
        errors.append(f"format « {doc['format']} » inconnu (attendu {FORMAT})")
    parties = doc["parties"]
    if not isinstance(parties, dict) or not parties:
        return [*errors, "« parties » doit lister au moins une partie"]
    for pid, p in parties.items():
        if not isinstance(p, dict) or not {"name", "roles", "ed25519"} <= set(p):
            errors.append(f"partie « {pid} » : name, roles et ed25519 sont obligatoires")
    for section in ("fields", "contact_fields"):
        if not isinstance(doc[section], dict):
            errors.append(f"« {section} » doit associer chaque organisme à une liste de colonnes")
    for pid, p in parties.items():
        if isinstance(p, dict) and ROLE_PROVIDER in p.get("roles", []) and \
                isinstance(doc["fields"], dict) and pid not in doc["fields"]:
            errors.append(f"fournisseur « {pid} » sans liste de champs autorisés")
    for section in ("residue_fields", "detection_fields", "shares_fields"):
        if not isinstance(doc.get(section) or {}, dict):
            errors.append(f"« {section} » doit associer chaque organisme à une liste de colonnes")
    for section in ("fields", "residue_fields", "detection_fields", "shares_fields"):
        if not isinstance(doc.get(section), dict):
            continue
        for agency, names in sorted(doc[section].items()):
            leaked = sorted(set(names or []) & FORBIDDEN_CENTRAL_FIELDS)
            if leaked:
                errors.append(f"« {agency} » ne peut pas transmettre d'identifiant en clair : "
                              f"{', '.join(leaked)}")
    try:
        _as_date(doc["valid_from"])
        _as_date(doc["valid_until"])
    except ValueError:
        errors.append("dates de validité illisibles (format AAAA-MM-JJ attendu)")
    return errors


def convention_from_dict(doc: dict[str, Any], path: Path) -> Convention:
    errors = _structure_errors(doc)
    if errors:
        raise RefusalError(f"{path} : convention mal formée : " + " ; ".join(errors))
    content = {k: v for k, v in doc.items() if k != "signatures"}
    signatures = doc.get("signatures") or {}
    if not isinstance(signatures, dict):
        raise RefusalError(f"{path} : « signatures » doit associer chaque partie à sa signature")
    return Convention(path=Path(path), content=content,
                      signatures={str(k): str(v) for k, v in signatures.items() if v})


def load_convention(path: Path | str) -> Convention:
    """Parse a convention YAML; refuses a missing or malformed file (signatures not checked)."""
    path = Path(path)
    if not path.is_file():
        raise RefusalError(f"{path} : convention introuvable ; aucun traitement sans convention "
                           "signée")
    try:
        doc = yaml.load(path.read_text("utf-8"), Loader=_UniqueKeyLoader)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f", ligne {line + 1}" if line is not None else ""
        problem = getattr(exc, "problem", None) or "YAML invalide"
        raise RefusalError(f"{path}{where} : convention illisible ({problem})") from exc
    return convention_from_dict(doc, path)


def verify_convention(conv: Convention, today: dt.date) -> None:
    """Refuse (RefusalError, French) unless every party signed this content and it is in force."""
    demo_keyed = demo_key_parties(conv)
    if demo_keyed and not conv.demo:
        raise RefusalError(
            f"{conv.path} : clé de signature de DÉMONSTRATION pour {', '.join(demo_keyed)} ; une "
            "convention réelle (demo: false) ne peut pas reposer sur des clés publiées")
    for pid, status in conv.signature_status().items():
        if status == "absente":
            raise RefusalError(
                f"{conv.path} : convention « {conv.id} » non signée par la partie « {pid} » ; "
                "toutes les parties doivent signer avant tout traitement")
        if status == "invalide":
            raise RefusalError(
                f"{conv.path} : signature de la partie « {pid} » invalide : le contenu de la "
                "convention a été modifié après signature (ou la signature n'est pas la sienne)")
    unknown = sorted(set(conv.signatures) - set(conv.parties))
    if unknown:
        raise RefusalError(f"{conv.path} : signature d'une partie inconnue : {', '.join(unknown)}")
    if today < conv.valid_from:
        raise RefusalError(
            f"{conv.path} : convention « {conv.id} » pas encore en vigueur (à partir du "
            f"{conv.valid_from:%d/%m/%Y}, nous sommes le {today:%d/%m/%Y})")
    if today > conv.valid_until:
        raise RefusalError(
            f"{conv.path} : convention « {conv.id} » expirée depuis le "
            f"{conv.valid_until:%d/%m/%Y} (nous sommes le {today:%d/%m/%Y}) ; renouvelez-la")
    if not conv.data_providers:
        raise RefusalError(f"{conv.path} : aucune partie fournisseuse de données")
    if not conv.demo:
        from pipeline.trust.keys import refuse_demo_fingerprint

        refuse_demo_fingerprint(conv.linkage_key_fingerprint, conv.id, conv.path)
    check_central_readiness(conv)


def demo_key_parties(conv: Convention) -> list[str]:
    """Parties whose declared signing key is the published demo key of that party."""
    from pipeline.trust.demo import DEMO_SEED
    from pipeline.trust.keys import seeded_signing_key

    return [pid for pid, party in sorted(conv.parties.items())
            if party.ed25519 == public_key_b64(seeded_signing_key(DEMO_SEED, pid).public_key())]


def central_required_columns(agency: str) -> list[str]:
    """Columns the central step needs from `agency`: the export contract's required columns
    (pipeline/shared/suites/<modele>_export.yaml, expectation `required_columns`)."""
    from pipeline.shared.suite_spec import load_suite

    return [c for e in load_suite(f"{modele(agency)}_export").expectations
            for c in e.get("required_columns") or []]


def central_readiness_errors(conv: Convention) -> list[str]:
    """Why this convention cannot produce what the central step needs (empty: it can)."""
    errors = []
    unknown = [a for a in conv.data_providers if a not in PROVIDERS]
    if unknown:
        return [f"fournisseur(s) inconnu(s) : {', '.join(unknown)} (connus : "
                f"{', '.join(PROVIDERS)}, pipeline/shared/providers.yaml)"]
    try:
        benefits_provider(conv.data_providers)
    except PipelineError as exc:
        errors.append(str(exc))
    if not on_side(conv.data_providers, COVERAGE):
        errors.append(f"aucun fournisseur côté « {COVERAGE} » (CPAM, MSA) : l'appariement "
                      "central est impossible")
    for agency in conv.data_providers:
        if agency not in conv.content["fields"]:
            errors.append(f"la convention n'autorise aucun champ pour « {agency} » : "
                          "l'appariement central est impossible")
            continue
        allowed = conv.allowed_fields(agency)
        if not any(f.startswith("tok_") for f in allowed):
            errors.append(f"la convention n'autorise aucun jeton pour « {agency} » : "
                          "l'appariement central est impossible")
            continue
        missing = [c for c in central_required_columns(agency) if c not in allowed]
        if missing:
            errors.append(f"colonnes nécessaires à l'étape centrale non autorisées pour "
                          f"« {agency} » : {', '.join(missing)}")
    if not conv.allowed_rules:
        errors.append("la convention n'autorise aucune règle de détection")
    # contract 6: the linking operator reads no feature, so a detecting operator must exist,
    # with what each provider sends it
    if not conv.detectors:
        errors.append(f"la convention ne désigne aucun opérateur de détection (rôle "
                      f"« {ROLE_DETECTOR} ») : l'opérateur d'appariement ne reçoit aucune "
                      "caractéristique des foyers et ne peut pas appliquer les règles")
    lacking = [a for a in conv.data_providers if not conv.detection_fields(a)]
    if lacking:
        errors.append("aucun fichier de détection autorisé (« detection_fields ») pour "
                      + ", ".join(lacking))
    return errors


def check_central_readiness(conv: Convention) -> None:
    """Refuse (French) a convention under which the central step could not run at all."""
    errors = central_readiness_errors(conv)
    if errors:
        raise RefusalError(f"{conv.path} : " + " ; ".join(errors))


def load_verified_convention(path: Path | str, today: dt.date) -> Convention:
    conv = load_convention(path)
    verify_convention(conv, today)
    return conv


# --- authoring ------------------------------------------------------------------------------


def dump_convention(content: dict[str, Any], signatures: dict[str, str], out: Path) -> Path:
    """Write the YAML (content in the given key order, then signatures), atomically."""
    header = ("# Convention d'échange de données CAF x CPAM (article L.114-8 II CRPA).\n"
              "# Tout le contenu hors « signatures » est signé (forme canonique JSON,\n"
              "# clés triées, UTF-8). Modifier un seul octet invalide toutes les signatures.\n")
    body = yaml.safe_dump(content, sort_keys=False, allow_unicode=True, width=100,
                          default_flow_style=None)
    sigs = yaml.safe_dump({"signatures": dict(sorted(signatures.items()))}, sort_keys=False,
                          allow_unicode=True, width=200, default_flow_style=False)
    text = header + body + sigs
    return write_text(out, text)


def create_convention(spec: dict[str, Any], party_keys: dict[str, Path], out: Path) -> Path:
    """Fill each party's Ed25519 public key from its keys folder and write the unsigned convention.

    `spec` holds the content without keys (parties: {id: {name, roles}}); its `demo` flag is kept.
    """
    from pipeline.trust.keys import load_public_ed25519

    content = {"format": FORMAT, **{k: v for k, v in spec.items()
                                    if k not in ("signatures", "format")}}
    parties = {}
    for pid, party in content.get("parties", {}).items():
        if pid not in party_keys:
            raise PipelineError(f"clé publique de la partie « {pid} » non fournie")
        parties[pid] = {**party, "ed25519": public_key_b64(
            load_public_ed25519(Path(party_keys[pid]), pid))}
    content["parties"] = parties
    if not content.get("fichiers_reference"):
        from pipeline.trust.reference import current_hashes

        content["fichiers_reference"] = current_hashes()
    errors = _structure_errors(content)
    if errors:
        raise PipelineError("convention mal formée : " + " ; ".join(errors))
    return dump_convention(content, {}, out)


def sign_convention(path: Path, party: str, keys_dir: Path) -> str:
    """Add `party`'s signature over the current content; refuses a key that is not the party's."""
    from pipeline.trust.keys import load_private_ed25519, private_key_path

    conv = load_convention(path)
    if party not in conv.parties:
        raise RefusalError(f"{path} : « {party} » n'est pas partie à la convention")
    private = load_private_ed25519(Path(keys_dir), party)
    demo_key = json.loads(private_key_path(Path(keys_dir), party, "ed25519").read_text(
        "utf-8")).get("demo") is True
    if demo_key and not conv.demo:
        raise RefusalError(f"{path} : clé de DÉMONSTRATION de {keys_dir} refusée pour signer une "
                           "convention réelle (demo: false)")
    if public_key_b64(private.public_key()) != conv.parties[party].ed25519:
        raise RefusalError(f"{path} : la clé de {keys_dir} n'est pas celle déclarée pour "
                           f"« {party} » dans la convention")
    signature = sign(private, DOMAIN_CONVENTION, conv.content)
    dump_convention(conv.content, {**conv.signatures, party: signature}, Path(path))
    return signature
