"""Agency key pairs and the per-convention linkage-key ceremony.

Each agency holds two long-term key pairs: X25519 (to receive a wrapped linkage key) and Ed25519
(to sign conventions and manifests). The linkage key K (32 random bytes) is created once per
convention by one agency and wrapped for every data-providing agency with ephemeral X25519 ECDH
+ HKDF-SHA256 + AES-256-GCM. The central operator receives nothing: it only ever sees K's
fingerprint, a one-way HKDF output that reveals nothing about K.

Layout of a keys folder (0700)::

    <agency>.ed25519.pub.pem, <agency>.x25519.pub.pem      public parts (0644)
    private/<agency>.{ed25519,x25519}.key.json             private parts (0600, folder 0700)
    linkage/<convention_id>.key.json                       unwrapped linkage key (0600)
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pipeline.common.errors import PipelineError, RefusalError
from pipeline.common.files import check_private, private_dir, write_private, write_text
from pipeline.trust.canonical import b64, canonical_json, unb64

if TYPE_CHECKING:
    from pipeline.trust.convention import Convention

PRIVATE_FORMAT = "nonrecours/private-key/v1"
WRAPPED_FORMAT = "nonrecours/wrapped-linkage-key/v1"
LINKAGE_FORMAT = "nonrecours/linkage-key/v1"
FINGERPRINT_INFO = b"nonrecours/v1/fingerprint"
DEMO_WARNING = (
    "DEMO ONLY - clé de démonstration publiée dans le dépôt : ne jamais l'utiliser pour des "
    "données réelles"
)
_NAME = re.compile(r"^[a-z][a-z0-9_-]{1,31}$")
_CONVENTION_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


def check_agency(agency: str) -> str:
    if not _NAME.match(agency or ""):
        raise PipelineError(f"nom d'organisme invalide : « {agency} » (minuscules, ex. caf, cpam)")
    return agency


def check_convention_id(convention_id: str) -> str:
    if not _CONVENTION_ID.match(convention_id or ""):
        raise PipelineError(f"identifiant de convention invalide : « {convention_id} »")
    return convention_id


def _hkdf(secret: bytes, info: bytes, length: int = 32, salt: bytes | None = None) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(secret)


def fingerprint(secret: bytes) -> str:
    """First 128 bits of HKDF(K, info='nonrecours/v1/fingerprint'), hex: identifies K, hides it."""
    return _hkdf(secret, FINGERPRINT_INFO, length=16).hex()


@dataclasses.dataclass(frozen=True)
class LinkageKey:
    """The per-convention linkage key K as held by an agency (never by the central operator)."""

    secret: bytes = dataclasses.field(repr=False)
    fingerprint: str
    convention_id: str
    demo: bool

    def subkey(self, name: str, length: int = 32) -> bytes:
        """Per-token subkey HKDF(K, info='nonrecours/v1/<name>') (docs/CONTRACTS.md, tokens)."""
        return _hkdf(self.secret, f"nonrecours/v1/{name}".encode(), length=length)


# --- paths ---------------------------------------------------------------------------------


def public_key_path(keys_dir: Path, agency: str, algorithm: str) -> Path:
    return Path(keys_dir) / f"{agency}.{algorithm}.pub.pem"


def private_key_path(keys_dir: Path, agency: str, algorithm: str) -> Path:
    return Path(keys_dir) / "private" / f"{agency}.{algorithm}.key.json"


def linkage_key_path(keys_dir: Path, convention_id: str) -> Path:
    return Path(keys_dir) / "linkage" / f"{convention_id}.key.json"


def wrapped_key_path(out_dir: Path, convention_id: str, agency: str) -> Path:
    return Path(out_dir) / f"{convention_id}.{agency}.wrapped.json"


def agency_of(keys_dir: Path) -> str:
    """The agency whose private keys live in `keys_dir` (exactly one is expected)."""
    folder = Path(keys_dir) / "private"
    names = sorted(p.name.split(".")[0] for p in folder.glob("*.ed25519.key.json"))
    if len(names) != 1:
        raise PipelineError(
            f"{keys_dir} : {len(names)} jeux de clés privées trouvés, un seul attendu "
            "(générez-les avec « keys generate »)"
        )
    return names[0]


# --- agency key pairs ----------------------------------------------------------------------


def _private_pem(key: ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def _public_pem(key: ed25519.Ed25519PublicKey | x25519.X25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def generate_agency_keys(
    agency: str, keys_dir: Path, *, demo: bool = False, seed: bytes | None = None,
    overwrite: bool = False,
) -> None:
    """Create the agency's X25519 and Ed25519 pairs; private parts owner-only.

    Refuses to replace existing long-term keys unless `overwrite` (losing them would orphan every
    signature and wrapped key made with them). `seed` makes generation deterministic and is
    reserved for the published demo material (it forces `demo=True`).
    """
    check_agency(agency)
    if seed is not None:
        demo = True
    existing = [p for alg in ("ed25519", "x25519")
                if (p := private_key_path(keys_dir, agency, alg)).exists()]
    if existing and not overwrite:
        raise PipelineError(f"{existing[0]} : des clés de « {agency} » existent déjà ; refus de "
                            "les remplacer (option overwrite pour une rotation volontaire)")
    keys_dir = private_dir(keys_dir)
    private_dir(keys_dir / "private")
    if seed is None:
        sign_key = ed25519.Ed25519PrivateKey.generate()
        kex_key = x25519.X25519PrivateKey.generate()
    else:
        sign_key = seeded_signing_key(seed, agency)
        kex_key = seeded_exchange_key(seed, agency)
    for algorithm, key in (("ed25519", sign_key), ("x25519", kex_key)):
        doc: dict[str, Any] = {
            "format": PRIVATE_FORMAT, "agency": agency, "algorithm": algorithm, "demo": demo,
        }
        if demo:
            doc["warning"] = DEMO_WARNING
        doc["pem"] = _private_pem(key)
        write_private(private_key_path(keys_dir, agency, algorithm),
                      (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
        write_text(public_key_path(keys_dir, agency, algorithm), _public_pem(key.public_key()))


def seeded_signing_key(seed: bytes, agency: str) -> ed25519.Ed25519PrivateKey:
    """The Ed25519 key `generate_agency_keys(seed=...)` derives (published demo material)."""
    return ed25519.Ed25519PrivateKey.from_private_bytes(
        _hkdf(seed, f"nonrecours/demo/{agency}/ed25519".encode()))


def seeded_exchange_key(seed: bytes, agency: str) -> x25519.X25519PrivateKey:
    """The X25519 key `generate_agency_keys(seed=...)` derives (published demo material)."""
    return x25519.X25519PrivateKey.from_private_bytes(
        _hkdf(seed, f"nonrecours/demo/{agency}/x25519".encode()))


def seeded_linkage_secret(seed: bytes, convention_id: str) -> bytes:
    """The linkage key `create_linkage_key(seed=...)` derives (published demo material)."""
    return _hkdf(seed, f"nonrecours/demo/linkage/{convention_id}".encode())


def _load_private_doc(keys_dir: Path, agency: str | None, algorithm: str) -> dict[str, Any]:
    agency = agency or agency_of(keys_dir)
    path = private_key_path(keys_dir, agency, algorithm)
    if not path.exists():
        raise PipelineError(f"{path} : clé privée {algorithm} de « {agency} » introuvable")
    check_private(path)
    try:
        doc = json.loads(path.read_text("utf-8"))
        if doc.get("format") != PRIVATE_FORMAT or doc.get("algorithm") != algorithm:
            raise ValueError
        return doc
    except (ValueError, AttributeError) as exc:
        raise PipelineError(f"{path} : fichier de clé privée illisible") from exc


def load_private_ed25519(keys_dir: Path, agency: str | None = None) -> ed25519.Ed25519PrivateKey:
    """The agency's signing key; refuses a file that group/others can read."""
    doc = _load_private_doc(Path(keys_dir), agency, "ed25519")
    key = serialization.load_pem_private_key(doc["pem"].encode("ascii"), password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise PipelineError(f"{keys_dir} : la clé de signature n'est pas une clé Ed25519")
    return key


def load_private_x25519(keys_dir: Path, agency: str | None = None) -> x25519.X25519PrivateKey:
    """The agency's key-agreement key; refuses a file that group/others can read."""
    doc = _load_private_doc(Path(keys_dir), agency, "x25519")
    key = serialization.load_pem_private_key(doc["pem"].encode("ascii"), password=None)
    if not isinstance(key, x25519.X25519PrivateKey):
        raise PipelineError(f"{keys_dir} : la clé d'échange n'est pas une clé X25519")
    return key


def _load_public(path: Path, kind: type) -> Any:
    if not path.exists():
        raise PipelineError(f"{path} : clé publique introuvable")
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except ValueError as exc:
        raise PipelineError(f"{path} : clé publique illisible") from exc
    if not isinstance(key, kind):
        raise PipelineError(f"{path} : type de clé publique inattendu")
    return key


def load_public_ed25519(
    keys_dir_or_file: Path, agency: str | None = None
) -> ed25519.Ed25519PublicKey:
    p = Path(keys_dir_or_file)
    if p.is_dir():
        p = public_key_path(p, agency or agency_of(p), "ed25519")
    return _load_public(p, ed25519.Ed25519PublicKey)


def load_public_x25519(
    keys_dir_or_file: Path, agency: str | None = None
) -> x25519.X25519PublicKey:
    p = Path(keys_dir_or_file)
    if p.is_dir():
        p = public_key_path(p, agency or agency_of(p), "x25519")
    return _load_public(p, x25519.X25519PublicKey)


# --- linkage-key ceremony --------------------------------------------------------------------


def _aad(convention_id: str, recipient: str, demo: bool, fp: str) -> bytes:
    """Binds the ciphertext to its convention, its recipient, its demo flag and its fingerprint."""
    return canonical_json({"convention_id": convention_id, "recipient": recipient,
                           "demo": demo, "fingerprint": fp})


def _wrap_key(shared: bytes, eph_pub: bytes, rcpt_pub: bytes, convention_id: str,
              recipient: str) -> bytes:
    info = f"nonrecours/v1/wrap/{convention_id}/{recipient}".encode()
    return _hkdf(shared, info, length=32, salt=eph_pub + rcpt_pub)


def create_linkage_key(
    convention_id: str,
    creator_keys_dir: Path,
    recipients: dict[str, Path],
    out_dir: Path,
    *,
    demo: bool = False,
    seed: bytes | None = None,
    convention: Convention | Path | None = None,
) -> str:
    """Create K once, write one wrapped-key file per data provider; return K's fingerprint.

    `recipients` maps each agency to its X25519 public key (a .pem file or its keys folder); the
    creator is always included. The creator signs every wrapped file. `seed` (demo only) makes the
    ceremony reproducible so the committed demo material can be regenerated byte for byte.
    When `convention` is given, every recipient must be one of its data providers: the central
    operator (or anyone else) never receives K.
    """
    check_convention_id(convention_id)
    creator_keys_dir = Path(creator_keys_dir)
    creator = agency_of(creator_keys_dir)
    signer = load_private_ed25519(creator_keys_dir, creator)
    if seed is not None:
        demo = True
    recipients = dict(recipients)
    recipients.setdefault(creator, creator_keys_dir)
    for agency in recipients:
        check_agency(agency)
    if convention is not None:
        from pipeline.trust.convention import Convention, load_convention

        conv = convention if isinstance(convention, Convention) else load_convention(convention)
        if conv.id != convention_id:
            raise PipelineError(f"la convention fournie est « {conv.id} », pas "
                                f"« {convention_id} »")
        outsiders = sorted(set(recipients) - set(conv.data_providers))
        if outsiders:
            raise RefusalError(
                f"la clé de liaison ne peut être remise qu'aux fournisseurs de données de la "
                f"convention ({', '.join(conv.data_providers)}) ; refusé pour : "
                f"{', '.join(outsiders)}")
    secret = os.urandom(32) if seed is None else seeded_linkage_secret(seed, convention_id)
    fp = fingerprint(secret)
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    if not demo:
        _refuse_demo_public(signer.public_key().public_bytes(*raw), creator, "signer l'envoi")
    publics = {a: load_public_x25519(Path(recipients[a]), a) for a in sorted(recipients)}
    for agency, rcpt in publics.items():  # every refusal before the first file is written
        if not demo:
            _refuse_demo_public(rcpt.public_bytes(*raw), agency, "la recevoir")
    for agency, rcpt in publics.items():
        if seed is None:
            eph = x25519.X25519PrivateKey.generate()
            nonce = os.urandom(12)
        else:
            eph = x25519.X25519PrivateKey.from_private_bytes(
                _hkdf(seed, f"nonrecours/demo/wrap/{convention_id}/{agency}".encode()))
            nonce = _hkdf(seed, f"nonrecours/demo/nonce/{convention_id}/{agency}".encode(), 12)
        eph_pub = eph.public_key().public_bytes(*raw)
        rcpt_pub = rcpt.public_bytes(*raw)
        kek = _wrap_key(eph.exchange(rcpt), eph_pub, rcpt_pub, convention_id, agency)
        ciphertext = AESGCM(kek).encrypt(nonce, secret, _aad(convention_id, agency, demo, fp))
        doc: dict[str, Any] = {
            "format": WRAPPED_FORMAT, "convention_id": convention_id, "recipient": agency,
            "creator": creator, "demo": demo, "fingerprint": fp,
            "ephemeral_public_key": b64(eph_pub), "recipient_public_key": b64(rcpt_pub),
            "nonce": b64(nonce), "ciphertext": b64(ciphertext),
            "creator_signing_key": b64(signer.public_key().public_bytes(*raw)),
        }
        doc["signature"] = b64(signer.sign(b"nonrecours/v1/wrapped-key\n" + canonical_json(doc)))
        if demo:
            doc["warning"] = DEMO_WARNING
        write_text(wrapped_key_path(out_dir, convention_id, agency),
                   json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return fp


def unwrap_linkage_key(wrapped: Path, keys_dir: Path) -> None:
    """Decrypt a wrapped linkage key with this agency's X25519 key and install it owner-only."""
    wrapped, keys_dir = Path(wrapped), Path(keys_dir)
    try:
        doc = json.loads(wrapped.read_text("utf-8"))
        if doc.get("format") != WRAPPED_FORMAT:
            raise ValueError
    except (OSError, ValueError, AttributeError) as exc:
        raise RefusalError(f"{wrapped} : fichier de clé enveloppée illisible") from exc
    agency = agency_of(keys_dir)
    if doc["recipient"] != agency:
        raise RefusalError(
            f"{wrapped} : clé enveloppée destinée à « {doc['recipient']} », pas à « {agency} »")
    signed = {k: v for k, v in doc.items() if k not in ("signature", "warning")}
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(unb64(doc["creator_signing_key"])).verify(
            unb64(doc["signature"]), b"nonrecours/v1/wrapped-key\n" + canonical_json(signed))
    except Exception as exc:
        raise RefusalError(f"{wrapped} : signature du créateur invalide (fichier altéré)") from exc
    private = load_private_x25519(keys_dir, agency)
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    eph_pub = unb64(doc["ephemeral_public_key"])
    own_pub = private.public_key().public_bytes(*raw)
    if not doc["demo"]:
        _refuse_demo_public(own_pub, agency, "la recevoir", wrapped)
        _refuse_demo_public(unb64(doc["creator_signing_key"]), str(doc["creator"]),
                            "signer l'envoi", wrapped)
    try:
        shared = private.exchange(x25519.X25519PublicKey.from_public_bytes(eph_pub))
        kek = _wrap_key(shared, eph_pub, own_pub, doc["convention_id"], agency)
        secret = AESGCM(kek).decrypt(
            unb64(doc["nonce"]), unb64(doc["ciphertext"]),
            _aad(doc["convention_id"], agency, bool(doc["demo"]), doc["fingerprint"]))
    except (InvalidTag, ValueError) as exc:
        raise RefusalError(
            f"{wrapped} : impossible de déchiffrer la clé de liaison avec les clés de « {agency} » "
            "(mauvais destinataire ou fichier altéré)") from exc
    if fingerprint(secret) != doc["fingerprint"]:
        raise RefusalError(f"{wrapped} : l'empreinte de la clé déchiffrée ne correspond pas")
    if not doc["demo"]:
        refuse_demo_fingerprint(doc["fingerprint"], doc["convention_id"], wrapped)
    install_linkage_key(keys_dir, doc["convention_id"], secret, demo=bool(doc["demo"]),
                        creator=doc["creator"])


def _refuse_demo_public(raw_public: bytes, agency: str, use: str,
                        where: Path | None = None) -> None:
    """Refuse a published demo public key for a real (non-demo) linkage key."""
    from pipeline.trust.demo import demo_public_keys

    if raw_public in demo_public_keys(agency):
        prefix = f"{where} : " if where else ""
        raise RefusalError(
            f"{prefix}clé de DÉMONSTRATION de « {agency} » refusée pour {use} : une vraie clé de "
            "liaison ne peut pas passer par une clé publiée dans le dépôt (n'importe qui pourrait "
            "la déchiffrer) ; générez de vraies clés avec « keys generate »")


def refuse_demo_fingerprint(fp: str | None, convention_id: str, where: Path | str) -> None:
    """Refuse the fingerprint of a published demo linkage key outside a demo convention."""
    from pipeline.trust.demo import demo_fingerprints

    if fp and fp in demo_fingerprints(convention_id):
        raise RefusalError(
            f"{where} : empreinte {fp} de la clé de liaison de DÉMONSTRATION (dérivée de la graine "
            f"publiée) refusée pour la convention réelle « {convention_id} » ; une vraie "
            "convention exige une clé créée par la cérémonie « keys create-linkage »")


def install_linkage_key(keys_dir: Path, convention_id: str, secret: bytes, *, demo: bool,
                        creator: str) -> Path:
    """Write K owner-only in keys_dir/linkage/ (folder 0700, file 0600)."""
    check_convention_id(convention_id)
    private_dir(keys_dir)
    private_dir(Path(keys_dir) / "linkage")
    doc: dict[str, Any] = {"format": LINKAGE_FORMAT, "convention_id": convention_id,
                           "creator": creator, "demo": demo, "fingerprint": fingerprint(secret)}
    if demo:
        doc["warning"] = DEMO_WARNING
    doc["secret"] = b64(secret)
    path = linkage_key_path(keys_dir, convention_id)
    write_private(path, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return path


def _default_convention_path(convention_id: str) -> Path | None:
    root = Path(__file__).resolve().parents[2]
    for folder in (Path.cwd() / "conventions", root / "conventions"):
        candidate = folder / f"{convention_id}.yaml"
        if candidate.exists():
            return candidate
    return None


def load_linkage_key(
    keys_dir: Path, convention_id: str, *, convention: Convention | Path | None = None
) -> LinkageKey:
    """Load K for a convention; refuses a demo key unless the convention itself is a demo.

    `convention` (object or YAML path) defaults to conventions/<convention_id>.yaml. When the
    convention records the expected fingerprint, a different key is refused.
    """
    from pipeline.trust.convention import Convention, load_convention

    check_convention_id(convention_id)
    path = linkage_key_path(Path(keys_dir), convention_id)
    if not path.exists():
        raise RefusalError(
            f"{path} : aucune clé de liaison installée pour la convention « {convention_id} » "
            "(commande « keys unwrap » ou « keys install-demo »)")
    check_private(path)
    try:
        doc = json.loads(path.read_text("utf-8"))
        secret = unb64(doc["secret"])
        if doc.get("format") != LINKAGE_FORMAT or len(secret) != 32:
            raise ValueError
    except (ValueError, KeyError, TypeError) as exc:
        raise RefusalError(f"{path} : fichier de clé de liaison illisible") from exc
    key = LinkageKey(secret=secret, fingerprint=fingerprint(secret),
                     convention_id=doc["convention_id"], demo=bool(doc.get("demo")))
    if key.fingerprint != doc.get("fingerprint") or key.convention_id != convention_id:
        raise RefusalError(f"{path} : clé de liaison incohérente (empreinte ou convention)")
    conv: Convention | None
    if isinstance(convention, Convention):
        conv = convention
    else:
        conv_path = Path(convention) if convention is not None else \
            _default_convention_path(convention_id)
        conv = load_convention(conv_path) if conv_path is not None else None
    if conv is not None and conv.id != convention_id:
        raise RefusalError(
            f"la convention fournie (« {conv.id} ») n'est pas « {convention_id} »")
    if key.demo and (conv is None or not conv.demo):
        raise RefusalError(
            f"{path} : clé de liaison de DÉMONSTRATION refusée — la convention « {convention_id} » "
            "n'est pas une convention de démonstration (demo: true) ; une vraie convention exige "
            "une clé créée par la cérémonie « keys create-linkage »")
    if conv is None or not conv.demo:
        refuse_demo_fingerprint(key.fingerprint, convention_id, path)
    if conv is not None and conv.linkage_key_fingerprint and \
            conv.linkage_key_fingerprint != key.fingerprint:
        raise RefusalError(
            f"{path} : l'empreinte de la clé de liaison ({key.fingerprint}) n'est pas celle "
            f"déclarée par la convention ({conv.linkage_key_fingerprint}) : mauvaise clé")
    return key
