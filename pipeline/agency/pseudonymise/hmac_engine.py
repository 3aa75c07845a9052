"""Vectorised HMAC-SHA256 over a string column, with interchangeable engines.

Every engine computes the same function, `hmac_sha256(key, value.encode('utf-8'))`, truncated to
128 bits in lower-case hex, null in -> null out. They differ only in speed (measured by
bench/pseudonymise.py on every run):

- ``polars_hash``: the polars-hash plugin's native HMAC (Rust, multi-threaded). Fastest, but the
  plugin takes the key as text: it only accepts keys that are valid UTF-8, which is why token
  subkeys are used as their 64-character hex text (see `hmac_key`).
- ``duckdb``: HMAC written in SQL over DuckDB's sha256 (ipad/opad, RFC 2104). No extra dependency.
- ``cryptography``: one reused `cryptography` HMAC object, `.copy()` per value (a Python loop:
  kept as the reference implementation and fallback, not for hot paths).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import duckdb
import polars as pl
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

HEX_CHARS = 32  # default width: 128 bits of the digest as lower-case hex

BLOCK = 64  # SHA-256 block size in bytes

Engine = Callable[[pl.Series, bytes], pl.Series]


def derive_subkey(secret: bytes, name: str, prefix: str = "nonrecours/v1/") -> bytes:
    """Per-token subkey HKDF-SHA256(K, salt=None, info=prefix + name): one key per field.

    Same definition as `pipeline.trust.keys.LinkageKey.subkey`; duplicated here so the token
    code does not need a key file (tests use a stand-in key).
    """
    if len(secret) < 32:
        raise ValueError("linkage key must be at least 32 bytes")
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=(prefix + name).encode("ascii")
    ).derive(secret)


def hmac_key(subkey: bytes) -> bytes:
    """The HMAC key for a token: the subkey's lower-case hex text (64 bytes = one block)."""
    return subkey.hex().encode("ascii")


def _pads(key: bytes) -> tuple[bytes, bytes]:
    if len(key) > BLOCK:
        key = crypto_digest(key)
    key = key.ljust(BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def crypto_digest(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SHA256())
    h.update(data)
    return h.finalize()


def _as_str(values: pl.Series) -> pl.Series:
    return values if values.dtype == pl.String else values.cast(pl.String)


def hmac_cryptography(values: pl.Series, key: bytes, hex_chars: int = HEX_CHARS) -> pl.Series:
    """Reference engine: a reused cryptography HMAC object, `.copy()` per value."""
    base = crypto_hmac.HMAC(key, hashes.SHA256())
    out: list[str | None] = []
    for v in _as_str(values).to_list():
        if v is None:
            out.append(None)
            continue
        h = base.copy()
        h.update(v.encode("utf-8"))
        out.append(h.finalize().hex()[:hex_chars])
    return pl.Series(values.name, out, dtype=pl.String)


def hmac_duckdb(values: pl.Series, key: bytes, hex_chars: int = HEX_CHARS) -> pl.Series:
    """HMAC in DuckDB SQL: sha256(opad || unhex(sha256(ipad || msg))) (RFC 2104)."""
    ipad, opad = _pads(key)
    con = duckdb.connect()
    try:
        con.register("frame", pl.DataFrame({"v": _as_str(values)}).to_arrow())
        table = con.sql(
            "SELECT left(sha256(unhex($opad) || unhex(sha256(unhex($ipad) || encode(v)))), "
            "$n) AS h FROM frame",
            params={"opad": opad.hex(), "ipad": ipad.hex(), "n": hex_chars},
        ).to_arrow_table()
    finally:
        con.close()
    out = pl.from_arrow(table)["h"]
    return out.alias(values.name)


@functools.cache
def polars_hash_available() -> bool:
    try:
        import polars_hash  # noqa: F401
    except ImportError:
        return False
    return True


def hmac_polars_hash(values: pl.Series, key: bytes, hex_chars: int = HEX_CHARS) -> pl.Series:
    """polars-hash plugin HMAC; the key must be valid UTF-8 text (see `hmac_key`)."""
    import polars_hash as plh

    try:
        text_key = key.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("polars_hash engine needs a UTF-8 key; use hmac_key(subkey)") from exc
    frame = pl.DataFrame({"v": _as_str(values)})
    out = frame.select(plh.col("v").chash.hmac_sha256(key=text_key).str.slice(0, hex_chars))
    return out.to_series().alias(values.name)


ENGINES: dict[str, Engine] = {
    "polars_hash": hmac_polars_hash,
    "duckdb": hmac_duckdb,
    "cryptography": hmac_cryptography,
}


def default_engine() -> str:
    """The fastest engine installed (measured in bench/results/pseudonymise.json)."""
    return "polars_hash" if polars_hash_available() else "duckdb"


def get_engine(name: str | None = None) -> Engine:
    name = name or default_engine()
    if name not in ENGINES:
        raise ValueError(f"unknown HMAC engine {name!r} (choose from {sorted(ENGINES)})")
    if name == "polars_hash" and not polars_hash_available():
        raise ValueError("polars-hash is not installed")
    return ENGINES[name]
