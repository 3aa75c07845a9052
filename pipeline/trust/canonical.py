"""One canonical byte form for everything we sign or chain, so that signer and verifier agree.

Canonical form = JSON, keys sorted, no insignificant whitespace, UTF-8 (not ASCII-escaped),
dates as ISO strings. A domain label is prefixed before signing so that a signature made for a
manifest can never be replayed as a convention signature (and vice versa).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
from pathlib import PurePath
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

DOMAIN_CONVENTION = b"nonrecours/v1/convention\n"
DOMAIN_MANIFEST = b"nonrecours/v1/manifest\n"


def _default(obj: Any) -> Any:
    if isinstance(obj, dt.datetime | dt.date):
        return obj.isoformat()
    if isinstance(obj, PurePath):
        return obj.as_posix()
    raise TypeError(f"type non sérialisable en JSON canonique : {type(obj).__name__}")


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, compact separators, UTF-8: the bytes that get signed or hashed."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
    ).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def public_key_b64(key: ed25519.Ed25519PublicKey) -> str:
    return b64(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def public_key_from_b64(text: str) -> ed25519.Ed25519PublicKey:
    return ed25519.Ed25519PublicKey.from_public_bytes(unb64(text))


def key_id(key: ed25519.Ed25519PublicKey) -> str:
    """Short public identifier of a signing key (SHA-256 of its raw bytes, 64 bits hex)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(private: ed25519.Ed25519PrivateKey, domain: bytes, payload: Any) -> str:
    return b64(private.sign(domain + canonical_json(payload)))


def verify_signature(
    public: ed25519.Ed25519PublicKey, domain: bytes, payload: Any, signature_b64: str
) -> bool:
    """True when the signature is well-formed and valid over the canonical payload."""
    try:
        signature = unb64(signature_b64)
        public.verify(signature, domain + canonical_json(payload))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def now_utc() -> dt.datetime:
    """Creation time; SOURCE_DATE_EPOCH (reproducible builds convention) wins when set."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return dt.datetime.fromtimestamp(int(epoch), tz=dt.UTC).replace(microsecond=0)
    return dt.datetime.now(tz=dt.UTC).replace(microsecond=0)


def utc_iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
