"""Known-answer tests of the HMAC primitive (RFC 4231) for every engine, and engine agreement."""

from __future__ import annotations

import hashlib
import hmac

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.agency.pseudonymise.hmac_engine import (
    ENGINES,
    derive_subkey,
    hmac_key,
    polars_hash_available,
)

# RFC 4231 section 4: (key, data, HMAC-SHA-256, truncate to 128 bits?)
RFC4231 = {
    1: (b"\x0b" * 20, b"Hi There",
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", False),
    2: (b"Jefe", b"what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", False),
    3: (b"\xaa" * 20, b"\xdd" * 50,
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe", False),
    4: (bytes(range(1, 26)), b"\xcd" * 50,
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b", False),
    5: (b"\x0c" * 20, b"Test With Truncation", "a3b6167473100ee06e0c796c2955552b", True),
    6: (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", False),
    7: (b"\xaa" * 131,
        b"This is a test using a larger than block-size key and a larger than block-size data."
        b" The key needs to be hashed before being used by the HMAC algorithm.",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2", False),
}
# polars-hash takes its key as text: the RFC cases whose key and data are both valid UTF-8.
TEXT_CASES = [1, 2, 5]


def _run(engine: str, key: bytes, data: bytes, hex_chars: int) -> str:
    series = pl.Series("v", [data.decode("latin-1") if engine != "polars_hash"
                             else data.decode("utf-8")])
    return ENGINES[engine](series, key, hex_chars)[0]


@pytest.mark.parametrize("case", sorted(RFC4231))
@pytest.mark.parametrize("engine", ["duckdb", "cryptography"])
def test_rfc4231_bytes_engines(engine: str, case: int) -> None:
    key, data, expected, truncated = RFC4231[case]
    if any(b >= 0x80 for b in data):
        pytest.skip("engines hash UTF-8 text; case data is not text")
    assert _run(engine, key, data, 32 if truncated else 64) == expected


@pytest.mark.parametrize("case", TEXT_CASES)
def test_rfc4231_polars_hash(case: int) -> None:
    if not polars_hash_available():
        pytest.skip("polars-hash not installed")
    key, data, expected, truncated = RFC4231[case]
    assert _run("polars_hash", key, data, 32 if truncated else 64) == expected


def test_rfc4231_non_text_cases_against_stdlib() -> None:
    """Cases 3, 6, 7 (non-UTF-8 bytes) pin the pads/long-key logic through the stdlib."""
    for case in (3, 6, 7):
        key, data, expected, _ = RFC4231[case]
        assert hmac.new(key, data, hashlib.sha256).hexdigest() == expected


def test_duckdb_long_key_hashed_first() -> None:
    key, data, expected, _ = RFC4231[6]
    assert _run("duckdb", key, data, 64) == expected


def test_polars_hash_refuses_binary_key() -> None:
    if not polars_hash_available():
        pytest.skip("polars-hash not installed")
    with pytest.raises(ValueError, match="UTF-8"):
        ENGINES["polars_hash"](pl.Series(["x"]), b"\xff\xfe" * 16)


def test_null_in_null_out() -> None:
    for name, engine in ENGINES.items():
        if name == "polars_hash" and not polars_hash_available():
            continue
        out = engine(pl.Series("v", ["a", None]), b"k" * 32)
        assert out[1] is None and len(out[0]) == 32, name


@settings(max_examples=15, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=40)), min_size=1, max_size=20),
       st.binary(min_size=32, max_size=32))
def test_engines_agree_with_stdlib(values: list[str | None], secret: bytes) -> None:
    key = hmac_key(derive_subkey(secret, "tok_x"))
    expected = [None if v is None else hmac.new(key, v.encode(), hashlib.sha256).hexdigest()[:32]
                for v in values]
    for name, engine in ENGINES.items():
        if name == "polars_hash" and not polars_hash_available():
            continue
        assert engine(pl.Series("v", values, dtype=pl.String), key).to_list() == expected, name


def test_subkey_matches_trust_definition() -> None:
    keys = pytest.importorskip("pipeline.trust.keys")
    secret = bytes(range(32))
    lk = keys.LinkageKey(secret=secret, fingerprint=keys.fingerprint(secret),
                         convention_id="test", demo=True)
    assert derive_subkey(secret, "tok_nir") == lk.subkey("tok_nir")
    assert derive_subkey(secret, "tok_nir") != derive_subkey(secret, "tok_dob")
