"""Keyed tokens declared in tokens.yaml; null when a component is null (a missing birth date must
not make two strangers agree) or the row's role is not concerned. Export contract 5: each token
is an Int64, the MAC's first 64 bits (`token_int`); the version 1 control stays lower-case hex.

Two derivations (the catalogue's `derivation`; docs/CONTRACTS.md, "Token derivation"):

- ``composants`` (tokens.yaml, version 3). Each normalised component value v (a surname, a
  date, a deletion variant...) is hashed once per DISTINCT value,
  D(v) = first 128 bits of HMAC-SHA256(Kc, utf8(v)), Kc = HKDF(K, info=prefix + "composant");
  then a token over components (c1..ck) under its subkey is the CBC-MAC with AES-256,
  Kt = HKDF(K, info=prefix + subkey), of the k + 1 blocks B0(k) || D(c1) || ... || D(ck),
  where B0(k) = the prefix in ASCII, zero-padded to 15 bytes, then the byte k. Names and dates
  repeat a lot, so the HMACs run once per distinct value (near-unique NIRs: once per row), and the
  per-row work is k AES-ECB passes over one contiguous (rows x 16 bytes) buffer per token
  (AES-NI, a few ms per million rows) with the XORs in numpy.
- ``hmac`` (tokens_v1.yaml, the attacks' control only): HMAC-SHA256 under the subkey's hex
  text over the components joined with the separator, every cell hashed in place.

`reference_token` computes one token in plain Python (no polars, no numpy): the known-answer
tests check the vectorised path against it.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl
import pyarrow as pa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from pipeline.agency.pseudonymise.hmac_engine import (
    default_engine,
    derive_subkey,
    get_engine,
    hmac_key,
)
from pipeline.agency.pseudonymise.phonetic import value_index
from pipeline.agency.pseudonymise.prepare import (
    PARENT_ROWS,
    component_expr,
    deletion_variant,
    prepare_components,
    role_column,
)
from pipeline.shared.token_catalogue import (  # noqa: F401  (re-exported for agency code)
    DELETION_MARK,
    V1_CATALOGUE,
    TokenCatalogue,
    TokenSpec,
    load_catalogue,
    packaged_catalogue,
)

TOKEN_THREADS = 2  # threads computing the token chains (the agency machines have 2+ cores)
BLOCK = 16  # AES block = a component digest = a token, in bytes
COMPONENT_SUBKEY = "composant"  # HKDF info suffix of Kc (token subkeys all start with tok_)
NEAR_UNIQUE_PROBE = 10_000  # rows looked at before estimating a component's distinct count


# --- the definition, in plain Python (reference; tiny inputs only) ---------------------------


def first_block(prefix: str, k: int) -> bytes:
    """B0(k): the derivation prefix (ASCII, zero-padded to 15 bytes) and the component count.

    It makes the messages under one key prefix-free (two messages of different lengths differ
    in their first block), the condition under which CBC-MAC is a PRF."""
    raw = prefix.encode("ascii")
    if len(raw) > BLOCK - 1 or not 1 <= k <= 255:
        raise ValueError("token prefix longer than 15 bytes or component count out of range")
    return raw.ljust(BLOCK - 1, b"\0") + bytes([k])


def component_key(secret: bytes, prefix: str) -> bytes:
    """Kc as the HMAC key: its 64-character hex text (the polars-hash engine needs text)."""
    return hmac_key(derive_subkey(secret, COMPONENT_SUBKEY, prefix))


SIGN = np.uint64(1 << 63)  # u - 2^63 as a signed integer = u with its top bit flipped


def token_int(mac: bytes) -> int:
    """The exported token of a MAC: its first 8 bytes as a big-endian unsigned u, minus 2^63 (a
    signed Int64; the order of u is kept, the key the central step always joined on)."""
    return int.from_bytes(mac[:8], "big") - (1 << 63)


def reference_token(secret: bytes, catalogue: TokenCatalogue, subkey: str,
                    values: Sequence[str | None]) -> int | str | None:
    """One token of the ``composants`` derivation from its component values, in plain Python."""
    if any(v is None for v in values):
        return None
    kc = component_key(secret, catalogue.info_prefix)
    kt = derive_subkey(secret, subkey, catalogue.info_prefix)
    enc = Cipher(algorithms.AES(kt), modes.ECB()).encryptor()
    state = enc.update(first_block(catalogue.info_prefix, len(values)))
    for v in values:
        d = hmac.new(kc, str(v).encode("utf-8"), hashlib.sha256).digest()[:BLOCK]
        state = enc.update(bytes(a ^ b for a, b in zip(state, d, strict=True)))
    if catalogue.encoding == "int64":
        return token_int(state)
    return state.hex()[: catalogue.hex_chars]


# --- vectorised ``composants`` derivation ----------------------------------------------------


class _Components:
    """Per component: the digest of each distinct value, and each row's index into them.

    A deletion variant (`nom_del_03`) is derived from the distinct values of its base column,
    so its rows reuse the base's index: one hash-table pass per base column, whatever the
    number of variants."""

    def __init__(self, frame: pl.DataFrame, key: bytes, engine: str,
                 order: np.ndarray | None) -> None:
        self.frame, self.key, self.engine, self.order = frame, key, engine, order
        self._bases: dict[str, tuple[pl.Series, np.ndarray, np.ndarray]] = {}
        self._digests: dict[str, np.ndarray] = {}
        self._rowwise: dict[str, pl.Series] = {}  # near-unique columns, hashed row by row
        self._alias: dict[str, str] = {}

    def base(self, name: str) -> tuple[pl.Series, np.ndarray, np.ndarray]:
        """(distinct non-null values, row -> value index (0 where null), row is not null)."""
        if name not in self._bases and self._from_rows(name):
            return self._bases[name]
        if name not in self._bases:
            col = self.frame.select(component_expr(name).alias("v")).to_series()
            # Near-unique (a NIR): hash every row in place. The first rows, then an estimate
            # (HyperLogLog, a tenth of an exact count) only pick the cheaper way: both ways
            # give the same digests.
            head = col.head(NEAR_UNIQUE_PROBE)
            if (head.n_unique() > head.len() // 2
                    and col.approx_n_unique() > col.len() // 2):
                index = pl.int_range(col.len(), eager=True).set(col.is_null(), None)
                uniq = col.fill_null("")
                # a masked copy of an earlier row-hashed column (nir_certifie of nir): its
                # digests, row for row, are that column's. Only where every known value of this
                # column is the other's, known too: a child's nir_ouvrant_droit (its parent's)
                # against its blank own nir is a difference, not a null to skip.
                self._alias[name] = next(
                    (other for other, ocol in self._rowwise.items()
                     if (col.is_null() | (col == ocol).fill_null(False)).all()), name)
                self._rowwise[name] = col
            else:
                uniq = col.drop_nulls().unique()  # any order: a digest depends on its value only
                index = value_index(col, uniq)
            valid = index.is_not_null().to_numpy()
            rows = index.fill_null(0).to_numpy()
            if self.order is not None:  # rows in the caller's order (gathered while narrow)
                rows, valid = rows.take(self.order), valid.take(self.order)
            self._bases[name] = (uniq, rows.astype(np.intp, copy=False), valid)
        return self._bases[name]

    def _from_rows(self, name: str) -> bool:
        """A parent NIR whose rows name the row holding its value (PARENT_ROWS): when that
        column is hashed row by row, its digests serve as they are, indexed by those rows."""
        source, row_column = PARENT_ROWS.get(name, (None, None))
        if source is None or row_column not in self.frame.columns:
            return False
        uniq = self.base(source)[0]
        if source not in self._rowwise:
            return False
        index = self.frame[row_column]
        valid = index.is_not_null().to_numpy()
        rows = index.fill_null(0).to_numpy()
        if self.order is not None:
            rows, valid = rows.take(self.order), valid.take(self.order)
        self._alias[name] = self._alias.get(source, source)
        self._bases[name] = (uniq, rows.astype(np.intp, copy=False), valid)
        return True

    def get(self, component: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(digests (m x 2 uint64), row index, row valid) of a component."""
        base, mark, pos = component.rpartition(DELETION_MARK)
        is_variant = bool(mark) and pos.isdigit()
        uniq, index, valid = self.base(base if is_variant else component)
        if component not in self._digests:
            alias = self._alias.get(component, component)
            if alias != component:
                self._digests[component] = self.get(alias)[0]
            else:
                values = uniq
                if is_variant:
                    values = pl.DataFrame({"v": uniq}).select(
                        deletion_variant(pl.col("v"), int(pos))).to_series()
                self._digests[component] = _digests(values, self.key, self.engine)
        return self._digests[component], index, valid


def _digests(values: pl.Series, key: bytes, engine: str) -> np.ndarray:
    """D(v) of each value as an (m x 2) uint64 array (one zero row when there is none)."""
    if values.len() == 0:
        return np.zeros((1, 2), dtype=np.uint64)
    hexes = get_engine(engine)(values, key, 2 * BLOCK)
    raw = binascii.unhexlify(hexes.str.join("").item())
    return np.frombuffer(raw, dtype=np.uint64).reshape(-1, 2)


def _hex_column(name: str, state: np.ndarray, rows: np.ndarray | None, n: int,
                hex_chars: int) -> pl.Series:
    """Lower-case hex strings of the MACs, null on the rows not computed: one Arrow data buffer
    and its string views (the layout polars keeps, so the column is not copied again)."""
    data = np.frombuffer(binascii.hexlify(state), dtype=np.uint8)
    if hex_chars != 2 * BLOCK:
        data = data.reshape(-1, 2 * BLOCK)[:, :hex_chars].copy()
    r = n if rows is None else rows.size
    if r * hex_chars >= 2**31:  # beyond a view's 32-bit offset: plain offsets
        kept = np.ones(n, dtype=bool) if rows is None else np.isin(np.arange(n), rows)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(kept.view(np.uint8), dtype=np.int64, out=offsets[1:])
        arr = pa.Array.from_buffers(
            pa.large_string(), n, [pa.py_buffer(np.packbits(kept, bitorder="little")),
                                   pa.py_buffer(offsets * hex_chars), pa.py_buffer(data)])
        return pl.Series(name, arr)
    views = np.empty((r, 4), dtype=np.int32)  # length, 4-byte prefix, buffer 0, offset
    views[:, 0] = hex_chars
    views[:, 1] = data.reshape(r, hex_chars)[:, :4].copy().view(np.int32).ravel()
    views[:, 2] = 0
    views[:, 3] = np.arange(0, r * hex_chars, hex_chars, dtype=np.int32)
    validity = None
    if rows is not None:  # spread the computed rows' views; a null row's view is zeros
        spread = np.zeros((n, 4), dtype=np.int32)
        spread.view(np.complex128)[rows, 0] = views.view(np.complex128)[:, 0]
        views = spread
        kept = np.zeros(n, dtype=bool)
        kept[rows] = True
        validity = pa.py_buffer(np.packbits(kept, bitorder="little"))
    arr = pa.Array.from_buffers(pa.string_view(), n,
                                [validity, pa.py_buffer(views), pa.py_buffer(data)])
    return pl.Series(name, arr)


def _int_column(name: str, state: np.ndarray, rows: np.ndarray | None, n: int) -> pl.Series:
    """`token_int` of every computed MAC (each row's first 8 bytes, big-endian), null on the
    rows not computed: one Int64 buffer and a validity bitmap, no Python object per row."""
    first = state[:, 0].byteswap() ^ SIGN if state.size else np.zeros(0, dtype=np.uint64)
    validity = None
    if rows is not None:
        values = np.zeros(n, dtype=np.uint64)
        values[rows] = first
        kept = np.zeros(n, dtype=bool)
        kept[rows] = True
        validity = pa.py_buffer(np.packbits(kept, bitorder="little"))
        first = values
    if validity is None:  # a fresh array: polars takes it as it is
        return pl.Series(name, first.view(np.int64))
    arr = pa.Array.from_buffers(pa.int64(), n, [validity, pa.py_buffer(first.view(np.int64))])
    return pl.Series(name, arr)


class _Workspace:
    """Buffers reused by every token (one allocation per compute_tokens, not per block)."""

    def __init__(self, n: int) -> None:
        self.index = np.empty(n, dtype=np.intp)
        self.block = np.empty((n, 2), dtype=np.uint64)
        self.out = bytearray(n * BLOCK + BLOCK)  # update_into wants room for one more block


def _cbc_mac(kt: bytes, b0: bytes, parts: list[tuple[np.ndarray, np.ndarray]],
             rows: np.ndarray | None, ws: _Workspace) -> np.ndarray:
    """CBC-MAC-AES of B0 || D(c1) || ... || D(ck) for every selected row at once: per block,
    gather the digests, XOR them into the chain, one AES-ECB call over the whole buffer.

    The chain after the first component, E(E(B0) ^ D(c1)), depends on c1's value alone: it is
    enciphered once per distinct value (a surname: ~400 among 1M rows) and gathered like a
    digest, which spares one AES pass and one XOR pass over every row per token."""
    enc = Cipher(algorithms.AES(kt), modes.ECB()).encryptor()
    b0_state = np.frombuffer(enc.update(b0), dtype=np.uint64)
    r = ws.block.shape[0] if rows is None else rows.size
    block, index = ws.block[:r], ws.index[:r]
    for i, (digests, row_index) in enumerate(parts):
        idx = row_index if rows is None else np.take(row_index, rows, out=index)
        if i == 0:
            first = np.bitwise_xor(digests, b0_state)
            state = np.frombuffer(enc.update(memoryview(first).cast("B")), dtype=np.uint64)
            chain = np.frombuffer(ws.out, dtype=np.uint64, count=block.size).reshape(-1, 2)
            np.take(state.reshape(-1, 2), idx, axis=0, out=chain)
            continue
        np.take(digests, idx, axis=0, out=block)
        np.bitwise_xor(block, chain, out=block)
        enc.update_into(memoryview(block).cast("B"), ws.out)  # the chain is consumed: overwrite
        chain = np.frombuffer(ws.out, dtype=np.uint64, count=block.size).reshape(-1, 2)
    return chain


def _tokens_composants(frame: pl.DataFrame, specs: list[TokenSpec], cat: TokenCatalogue,
                       secret: bytes, agency: str, engine: str,
                       order: np.ndarray | None) -> pl.DataFrame:
    if cat.bits > 8 * BLOCK:
        raise ValueError("the composants derivation gives 128-bit tokens at most")
    comps = _Components(frame, component_key(secret, cat.info_prefix), engine, order)
    n = frame.height
    roles = frame[role_column(agency)] if any(s.roles for s in specs) else None
    # Digests and row indexes first (polars, parallel inside); then the per-token chains, in
    # two threads: numpy's gathers, XORs and copies release the GIL.
    jobs = []
    for spec in specs:
        parts = [comps.get(c) for c in spec.components]
        valid = np.logical_and.reduce([v for _, _, v in parts])
        if spec.roles is not None:
            concerned = roles.is_in(list(spec.roles)).fill_null(False).to_numpy()
            valid &= concerned if order is None else concerned[order]
        rows = None if valid.all() else np.flatnonzero(valid)
        jobs.append((spec, [(d, i) for d, i, _ in parts], rows))

    def run(share: list[tuple[TokenSpec, list, np.ndarray | None]]) -> list[pl.Series]:
        ws, out = _Workspace(n), []
        for spec, indexes, rows in share:
            if (n if rows is None else rows.size) == 0:
                state = np.zeros((0, 2), dtype=np.uint64)
            else:
                kt = derive_subkey(secret, spec.subkey, cat.info_prefix)
                state = _cbc_mac(kt, first_block(cat.info_prefix, len(indexes)), indexes,
                                 rows, ws)
            out.append(_int_column(spec.name, state, rows, n) if cat.encoding == "int64"
                       else _hex_column(spec.name, state, rows, n, cat.hex_chars))
        return out

    with ThreadPoolExecutor(max_workers=TOKEN_THREADS) as pool:
        shares = list(pool.map(run, [jobs[i::TOKEN_THREADS] for i in range(TOKEN_THREADS)]))
    by_name = {col.name: col for share in shares for col in share}
    cols = [by_name[spec.name] for spec in specs]
    return pl.DataFrame(cols) if cols else pl.DataFrame()


# --- ``hmac`` derivation (the version 1 control) ---------------------------------------------


def message_expr(spec: TokenSpec, separator: str, agency: str) -> pl.Expr:
    """Components joined by the separator; null when any is null or the role is not concerned."""
    msg = pl.concat_str([component_expr(c) for c in spec.components],
                        separator=separator, ignore_nulls=False)
    if spec.roles is not None:
        msg = pl.when(pl.col(role_column(agency)).is_in(list(spec.roles))).then(msg)
    return msg


def hmac_unique(messages: pl.Series, key: bytes, engine: str | None = None,
                hex_chars: int = 32) -> pl.Series:
    """HMAC each distinct non-null message once, then map back onto the column."""
    uniq = messages.drop_nulls().unique()
    digests = get_engine(engine)(uniq, key, hex_chars)
    return messages.replace_strict(uniq, digests, default=None, return_dtype=pl.String)


def _tokens_hmac(frame: pl.DataFrame, specs: list[TokenSpec], cat: TokenCatalogue,
                 secret: bytes, agency: str, engine: str) -> pl.DataFrame:
    exprs = {s.name: message_expr(s, cat.separator, agency) for s in specs}
    keys = {s.name: hmac_key(derive_subkey(secret, s.subkey, cat.info_prefix)) for s in specs}
    if engine == "polars_hash":
        import polars_hash  # noqa: F401 (registers the `chash` expression namespace)

        return frame.select([m.chash.hmac_sha256(key=keys[c].decode("ascii"))
                             .str.slice(0, cat.hex_chars).alias(c) for c, m in exprs.items()])
    messages = frame.select([m.alias(c) for c, m in exprs.items()])
    cols = [hmac_unique(messages[s.name], keys[s.name], engine, cat.hex_chars).alias(s.name)
            for s in specs]
    return pl.DataFrame(cols) if cols else pl.DataFrame()


def compute_tokens(
    df: pl.DataFrame,
    agency: str,
    secret: bytes,
    *,
    engine: str | None = None,
    catalogue: TokenCatalogue | None = None,
    prepared: bool = False,
    order: np.ndarray | None = None,
) -> pl.DataFrame:
    """One column per token of `agency`, row-aligned with `df` (an ingested extract), or with
    `df[order]` when a row order is given (the export's, so that no token column is gathered).

    `engine` names the HMAC engine (hmac_engine.py); every engine gives the same tokens."""
    cat = catalogue or packaged_catalogue()
    frame = df if prepared else prepare_components(df, agency)
    specs = cat.for_agency(agency)
    engine = engine or default_engine()
    get_engine(engine)  # refuses an unknown or missing engine
    if cat.derivation == "composants":
        return _tokens_composants(frame, specs, cat, secret, agency, engine, order)
    tokens = _tokens_hmac(frame, specs, cat, secret, agency, engine)
    return tokens if order is None else tokens[order]


def reference_tokens(df: pl.DataFrame, agency: str, secret: bytes,
                     catalogue: TokenCatalogue | None = None
                     ) -> dict[str, list[int | str | None]]:
    """Every token of a (small) ingested frame through `reference_token`, row by row."""
    cat = catalogue or packaged_catalogue()
    frame = prepare_components(df, agency)
    out: dict[str, list[int | str | None]] = {}
    for spec in cat.for_agency(agency):
        values = frame.select([component_expr(c).alias(f"c{i}")
                               for i, c in enumerate(spec.components)]).rows()
        roles = frame[role_column(agency)].to_list() if spec.roles else None
        out[spec.name] = [
            None if roles is not None and roles[r] not in spec.roles
            else reference_token(secret, cat, spec.subkey, row)
            for r, row in enumerate(values)]
    return out

