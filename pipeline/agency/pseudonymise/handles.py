"""Random re-identification handles (person and household), 128 bits, never from identity.

By default the bytes come from the OS CSPRNG (`os.urandom`), so a handle says nothing about the
person and cannot be recomputed by anyone, the other agency included. With a seed (tests, demos,
reproducible benchmarks) they come from a seeded CSPRNG instead: the ChaCha20 keystream under
HKDF(K, salt=seed, info="nonrecours/v1/handles/<agency>/<purpose>"). Row i of the ingested
extract (in line order) gets bytes [16i, 16i+16) of the stream: the handle depends on the row's
position, the key and the seed, never on a name, NIR or date; without K nobody can predict it.
"""

from __future__ import annotations

import os

import numpy as np
import polars as pl
import pyarrow as pa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pipeline.common.errors import PipelineError

HANDLE_BYTES = 16
# The household's ordinal (0 for the household of the first line, ...), beside its handle: the
# per-household steps (features, local place) group on this integer rather than on the 32-char
# handle (a grouping on 1M strings cost about twice as much). Never exported nor written.
FOYER_NUMBER = "foyer_n"


def random_bytes(n_bytes: int, *, secret: bytes | None, seed: int | None, label: str) -> bytes:
    """`n_bytes` from the OS CSPRNG, or from the seeded ChaCha20 stream for `label`."""
    if seed is None:
        return os.urandom(n_bytes)
    if secret is None:
        raise ValueError("a seeded handle stream needs the linkage key")
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=int(seed).to_bytes(16, "big", signed=True),
        info=f"nonrecours/v1/handles/{label}".encode(),
    ).derive(secret)
    encryptor = Cipher(algorithms.ChaCha20(key, b"\0" * 16), mode=None).encryptor()
    return encryptor.update(b"\0" * n_bytes)


def bytes_to_hex(buf: bytes, width: int = HANDLE_BYTES) -> pl.Series:
    """Split `buf` into `width`-byte values, lower-case hex (vectorised through Arrow)."""
    n = len(buf) // width
    arr = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), n, [None, pa.py_buffer(buf)])
    return pl.from_arrow(arr).cast(pl.Binary).bin.encode("hex")


def _prefix_key(handles: pl.Series) -> pl.Series | None:
    """The first 64 bits of each handle as an integer, when they tell every handle apart.

    Handles are fixed-width lower-case hex, so integer order is text order; an integer sort or
    count on 1M rows costs a fifth of the same on 32-character strings. None when a value is
    not lower-case hex, the widths differ, or two handles share their first 64 bits (then the
    caller works on the text)."""
    prefix = handles.str.slice(0, 16)
    key = prefix.str.to_integer(base=16, dtype=pl.UInt64, strict=False)
    if (key.null_count() or key.n_unique() != handles.len()
            or handles.str.len_bytes().n_unique() > 1 or prefix.str.contains("[^0-9a-f]").any()):
        return None
    return key


def handle_order(handles: pl.Series, key: pl.Series | None = None) -> np.ndarray:
    """The row order that sorts `handles` as text, as indices: through the integer key of their
    first 64 bits when it decides (every handle 32 hex, those keys distinct), else the text.
    `key`: that key when the caller already has it (`keyed_handles`)."""
    key = _prefix_key(handles) if key is None else key
    return (handles if key is None else key).arg_sort().to_numpy()


def keyed_handles(n: int, *, secret: bytes | None = None, seed: int | None = None,
                  label: str) -> tuple[pl.Series, pl.Series | None]:
    """`new_handles` and their `_prefix_key`, read from the random bytes themselves (the hex
    text's first 16 characters are the first 8 bytes, big-endian): no parse of 1M strings."""
    buf = random_bytes(n * HANDLE_BYTES, secret=secret, seed=seed, label=label)
    handles = bytes_to_hex(buf)
    words = np.frombuffer(buf, dtype=">u8", count=2 * n)[::2].astype(np.uint64)
    key: pl.Series | None = pl.Series(handles.name, words, dtype=pl.UInt64)
    if key.n_unique() != n:
        key = None
        if handles.n_unique() != n:
            raise PipelineError("collision de handles aléatoires : relancez la pseudonymisation")
    return handles, key


def new_handles(n: int, *, secret: bytes | None = None, seed: int | None = None,
                label: str) -> pl.Series:
    """`n` distinct 32-hex handles (a collision, odds 2^-128 x n^2, is refused, not ignored)."""
    return keyed_handles(n, secret=secret, seed=seed, label=label)[0]


def person_handles(n: int, agency: str, *, secret: bytes | None,
                   seed: int | None) -> pl.Series:
    """The `n` person handles of `agency`'s rows in line order (the `handle` column)."""
    return keyed_person_handles(n, agency, secret=secret, seed=seed)[0]


def keyed_person_handles(n: int, agency: str, *, secret: bytes | None,
                         seed: int | None) -> tuple[pl.Series, pl.Series | None]:
    """`person_handles` and their integer key (for `handle_order`)."""
    return keyed_handles(n, secret=secret, seed=seed, label=f"{agency}/person")


def assign_handles(df: pl.DataFrame, group_key: pl.Expr, agency: str, *,
                   secret: bytes | None, seed: int | None,
                   person: pl.Series | None = None) -> pl.DataFrame:
    """`handle` per row, `foyer` per household group and its ordinal FOYER_NUMBER, in line
    order (df sorted by line).

    Households are numbered in order of their first line, so the foyer handle, too, depends only
    on positions, never on the dossier number or a NIR. `person`: the person handles when
    already drawn (`person_handles`, same agency, key and seed: the export's row order is known
    before the rest is).
    """
    if not df["line"].is_sorted():  # an ingested extract already is: no 1M-row gather
        df = df.sort("line")
    n = df.height
    if person is None:
        person = person_handles(n, agency, secret=secret, seed=seed)
    grp = df.select(group_key.alias("_g"))["_g"]
    if grp.null_count():
        raise ValueError("household key must not be null")
    # Each household's number = how many households appeared before its first row. The keys as
    # categorical codes (compared for equality only) and numpy: no grouping, sort and join of
    # 1M strings (a third of the CPU).
    codes = grp.cast(pl.String).cast(pl.Categorical).to_physical()
    first = codes.is_first_distinct().to_numpy()
    code = codes.to_numpy()
    number = np.zeros(int(code.max()) + 1 if n else 0, dtype=np.uint32)
    number[code[first]] = np.arange(int(first.sum()), dtype=np.uint32)
    foyer_n = pl.Series(FOYER_NUMBER, number[code], dtype=pl.UInt32)
    foyers = new_handles(int(first.sum()), secret=secret, seed=seed, label=f"{agency}/foyer")
    return df.with_columns(handle=person, foyer=foyers.gather(foyer_n),
                           **{FOYER_NUMBER: foyer_n})
