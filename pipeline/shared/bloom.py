"""Keyed, hardened record-level Bloom filters for the residue exchange (docs/RESIDUE.md).

After the exact-key stage the centre asks each agency for its still-unlinked rows
(`RESIDUE_DIR/RESIDUE_REQUEST`); the agency answers with one encoded filter per row
(`RESIDUE_FILE`: `handle` + the Int64 `LANES`), the centre compares them by Hamming similarity.
Every parameter lives in bloom.yaml; this module is the one implementation both sides and the
attacks read.

`encode(components, secret)` takes a frame with the string columns `COMPONENTS`:

- `nom`       surname (CAF: birth name; CPAM: `nom`, possibly a usage name)
- `nom_usage` CAF usage name, null when none (CPAM: always null)
- `prenom1`   first given name
- `jour`, `mois`, `annee`   birth-date parts, "DD", "MM", "YYYY" (null where unknown)
- `sexe`      "1" / "2" (null when unknown)
- `code_commune`  INSEE commune code of residence (null when unknown)

all normalised as ingested (upper-case ASCII, single spaces; pipeline/agency/ingest), i.e. the
columns of the same names that pipeline/agency/pseudonymise/prepare.py builds
(`components_of(prepared)`). `components_from(...)` builds the frame from plain lists.

Encoding: each row's items (padded q-grams of the names under one label, so swapped names still
agree; labelled date parts, sex and commune) set key-derived positions of an input filter
(CLK-style, Schnell, Bachteler & Reiher 2009); positions come from HMAC-SHA256 under the HKDF
subkey "positions", computed once per distinct value and scattered to the rows. Hardened
(default): a key-derived linear diffusion layer, each output bit the XOR of t input bits
(Armknecht, Heng & Schnell, PoPETs 2023), so no output bit belongs to one q-gram, on the
balanced input (filter + complement: a key-derived XOR mask on the output, so the weight does
not follow the names' length). `hardened=False` is the plain CLK, the control the attacks must
break. Similarity: 1 - Hamming / bits (hardened), Dice (control). Vectorised: polars for the
items, numpy for the bit matrices, in chunks of CHUNK_ROWS.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import hmac
from collections.abc import Sequence
from importlib import resources

import numpy as np
import polars as pl
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pipeline.common import yaml_safe

RESIDUE_DIR = "residu"  # central output folder of the requests
RESIDUE_REQUEST = "demande_{provider}.csv"  # one column `handle`, sorted, header line
RESIDUE_FILE = "residu.parquet"  # the agency's answer: handle + LANES, sorted by handle
# next to it: the attacks the agency ran on its own answer (aggregate figures, no value)
RESIDUE_LEAKAGE = "{provider}.residu.leakage.json"
REQUEST_COLUMN = "handle"
CHUNK_ROWS = 50_000  # rows per bit-matrix chunk (50k x 1024 bools = 50 MB, x t+2 at peak)


@dataclasses.dataclass(frozen=True)
class ItemSpec:
    """One `items` entry of bloom.yaml."""

    label: str
    kind: str  # "qgrams" or "value"
    components: tuple[str, ...]
    hashes: int


@dataclasses.dataclass(frozen=True)
class BloomParams:
    """bloom.yaml, parsed and checked."""

    version: int
    info_prefix: str
    subkeys: tuple[tuple[str, str], ...]  # (role, name): hashable, for the caches
    separator: str
    input_bits: int
    output_bits: int
    lane_prefix: str
    pad: str
    q: int
    items: tuple[ItemSpec, ...]
    t: int
    bits_per_band: int
    bands: int
    balance: bool = False  # diffusion input = filter + its complement (see bloom.yaml)

    @property
    def diffused_bits(self) -> int:
        """Size of the diffusion layer's input: the filter, or filter + complement."""
        return self.input_bits * (2 if self.balance else 1)

    @property
    def components(self) -> list[str]:
        return list(dict.fromkeys(c for it in self.items for c in it.components))

    def lanes(self, bits: int | None = None) -> list[str]:
        n = (bits or self.output_bits) // 64
        return [f"{self.lane_prefix}{i:02d}" for i in range(n)]


def parse_params(text: str) -> BloomParams:
    """bloom.yaml text -> BloomParams; refuses sizes the encoding cannot honour."""
    d = yaml_safe.load(text)
    items = tuple(ItemSpec(i["label"], i["kind"], tuple(i["components"]), int(i["hashes"]))
                  for i in d["items"])
    p = BloomParams(int(d["version"]), d["info_prefix"], tuple(sorted(d["subkeys"].items())),
                    d["separator"],
                    int(d["input_bits"]), int(d["output_bits"]), d["lane_prefix"], d["pad"],
                    int(d["q"]), items, int(d["diffusion"]["t"]),
                    int(d["lsh"]["bits_per_band"]), int(d["lsh"]["bands"]),
                    bool(d["diffusion"].get("balance", False)))
    for bits in (p.input_bits, p.output_bits):
        if bits % 64 or not 64 <= bits <= 65536 or 65536 % bits:
            raise ValueError("filter sizes must be powers of two between 64 and 65536 bits")
    if p.output_bits > p.input_bits or not 1 <= p.t <= 16:
        raise ValueError("output_bits <= input_bits and 1 <= t <= 16")
    if any(it.kind not in ("qgrams", "value") or it.hashes < 1 for it in items):
        raise ValueError("item kind must be qgrams or value, with hashes >= 1")
    if not 1 <= p.bits_per_band <= 63 or p.bands > (p.output_bits // 64) * (
            64 // p.bits_per_band):
        raise ValueError("LSH bands must fit in the lanes (a band never straddles two lanes)")
    return p


@functools.cache
def params() -> BloomParams:
    return parse_params(resources.files("pipeline.shared").joinpath("bloom.yaml")
                        .read_text("utf-8"))


PARAMS = params()
COMPONENTS: list[str] = PARAMS.components
LANES: list[str] = PARAMS.lanes()  # the residue's filter columns, both sides read this
# Every column of residu.parquet: what a convention's `residue_fields` lists for each provider.
RESIDUE_FIELDS: list[str] = [REQUEST_COLUMN, *LANES]


def lsh_bands(width: int | None = None) -> list[tuple[str, int, int]]:
    """(lane column, right shift, width w) of each LSH band, in SQL `(lane >> shift) & (2^w - 1)`
    (an arithmetic shift: the mask keeps exactly the w bits). Each lane holds 64 // w bands
    side by side from bit 0; band b = lane b // (64 // w), bits from (b % (64 // w)) * w.
    `width` above bloom.yaml's (a large residue, see `lsh_width`) keeps as many of the declared
    bands as still fit in the lanes."""
    w = max(PARAMS.bits_per_band, width or 0)
    per_lane = 64 // w
    n = min(PARAMS.bands, per_lane * len(LANES))
    return [(LANES[b // per_lane], (b % per_lane) * w, w) for b in range(n)]


def lsh_width(rows_l: int, rows_r: int, max_band_pairs: int) -> int:
    """Band width for a residue of `rows_l` x `rows_r` rows: bloom.yaml's, or the narrowest wider
    one whose bands hold at most `max_band_pairs` row pairs in all (B bands of w bits: about
    B * rows_l * rows_r / 2^w). A fixed width lets the band values fill up as the residue
    grows, past the cap that leaves a crowded value out, and then no pair is compared at all
    (10 M x 10 M: 761,482 rows a side, 186 a value at 12 bits, 0 links); a width chosen for
    the rows per value alone (16 bits there) made 566 M band pairs and ran past 600 s."""
    for w in range(PARAMS.bits_per_band, 64):
        if len(lsh_bands(w)) * rows_l * rows_r / 2**w <= max_band_pairs:
            return w
    return 63


# --- keys -----------------------------------------------------------------------------------

def subkey(secret: bytes, name: str, p: BloomParams = PARAMS) -> bytes:
    """HKDF-SHA256(K, salt=None, info=info_prefix + subkeys[name]), 32 bytes."""
    if len(secret) < 32:
        raise ValueError("linkage key must be at least 32 bytes")
    info = (p.info_prefix + dict(p.subkeys)[name]).encode("ascii")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def item_positions(items: Sequence[str], hashes_per_item: Sequence[int], secret: bytes,
                   p: BloomParams = PARAMS) -> list[np.ndarray]:
    """Input-filter positions of each distinct item: 16-bit words of HMAC-SHA256(positions
    subkey as hex text, item \\x1f block), modulo input_bits. One HMAC per 16 positions; called
    on distinct items only (a few thousand), never per row."""
    key = subkey(secret, "positions", p).hex().encode("ascii")
    base = hmac.new(key, digestmod=hashlib.sha256)
    out = []
    for item, k in zip(items, hashes_per_item, strict=True):
        blob = b""
        for block in range(-(-k // 16)):
            h = base.copy()
            h.update(f"{item}{p.separator}{block}".encode())
            blob += h.digest()
        words = np.frombuffer(blob, dtype=">u2")[:k]
        out.append((words % p.input_bits).astype(np.int64))
    return out


@functools.lru_cache(maxsize=8)
def _diffusion_cached(secret: bytes, p: BloomParams) -> np.ndarray:
    """(output_bits, t) indices into the diffusion input (`diffused_bits`): t key-derived
    permutations of the filter bits (every filter bit feeds exactly t output bits when
    output_bits = input_bits), repaired so that no output bit takes the same filter bit twice;
    balanced, each slot reads the bit or its complement (bit + input_bits) by a key-derived
    coin. A bit XORed with itself or its complement would cancel to a constant."""
    m, t = p.input_bits, p.t
    stream = Cipher(algorithms.ChaCha20(subkey(secret, "diffusion", p), b"\0" * 16),
                    mode=None).encryptor().update(b"\0" * (9 * m * t))
    keys = np.frombuffer(stream[: 8 * m * t], dtype="<u8").reshape(t, m)
    coins = np.frombuffer(stream[8 * m * t:], dtype=np.uint8).reshape(t, m) & 1
    perms = [np.argsort(keys[i], kind="stable") for i in range(t)]
    for i in range(1, t):
        perm = perms[i]
        for _ in range(64 * m):
            clash = np.zeros(m, dtype=bool)
            for j in range(i):
                clash |= perm == perms[j]
            bad = np.flatnonzero(clash)
            if bad.size == 0:
                break
            j0 = int(bad[0])  # swap with the next slot, deterministic; keeps a permutation
            j1 = (j0 + 1) % m
            perm[j0], perm[j1] = perm[j1], perm[j0]
        else:  # pragma: no cover - would need t close to m
            raise ValueError("diffusion layer: could not draw distinct input bits")
    mix = np.stack(perms, axis=1)
    if p.balance:
        mix = mix + m * coins.T.astype(np.int64)
    return mix[: p.output_bits]


def diffusion_matrix(secret: bytes, p: BloomParams = PARAMS) -> np.ndarray:
    return _diffusion_cached(bytes(secret), p)


# --- items ----------------------------------------------------------------------------------

def _qgram_items(col: pl.Expr, label: str, p: BloomParams, max_len: int) -> pl.Expr:
    padded = pl.concat_str([pl.lit(p.pad), col.str.replace_all(" ", p.pad), pl.lit(p.pad)])
    grams = [padded.str.slice(i, p.q) for i in range(max(max_len + 2 - p.q + 1, 1))]
    return pl.concat_list(grams).list.eval(
        pl.lit(label + p.separator) + pl.element().filter(pl.element().str.len_chars() == p.q))


def row_items(components: pl.DataFrame, p: BloomParams = PARAMS) -> pl.DataFrame:
    """Long frame (`row` UInt32, `item` String): every item each row sets; nulls add none."""
    missing = [c for c in p.components if c not in components.columns]
    if missing:
        raise ValueError("components frame lacks " + ", ".join(missing))
    frame = components.select([pl.col(c).cast(pl.String) for c in p.components]).with_row_index(
        "row")
    parts = []
    for spec in p.items:
        for comp in spec.components:
            col = pl.col(comp)
            if spec.kind == "qgrams":
                max_len = int(frame[comp].str.len_chars().max() or 0)
                expr = _qgram_items(col, spec.label, p, max_len)
                part = frame.select("row", expr.alias("item")).explode("item")
            else:
                part = frame.select("row", (pl.lit(spec.label + p.separator) + col).alias("item"))
            parts.append(part.drop_nulls("item"))
    return pl.concat(parts) if parts else pl.DataFrame(schema={"row": pl.UInt32,
                                                               "item": pl.String})


def _hashes_of(p: BloomParams) -> dict[str, int]:
    return {spec.label: spec.hashes for spec in p.items}


# --- encoding -------------------------------------------------------------------------------

def _positions_of_items(items: list[str], secret: bytes, p: BloomParams,
                        cache: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Positions of each item, HMACs computed once per distinct item per encoding call."""
    new = [s for s in dict.fromkeys(items) if s not in cache]
    if new:
        per_label = _hashes_of(p)
        ks = [per_label[s.split(p.separator, 1)[0]] for s in new]
        cache.update(zip(new, item_positions(new, ks, secret, p), strict=True))
    return [cache[s] for s in items]


def _value_table(values: pl.Series, spec: ItemSpec, secret: bytes, p: BloomParams,
                 cache: dict[str, np.ndarray]) -> np.ndarray:
    """(distinct values, width) int64: the input positions each distinct value of one component
    sets (all its q-grams', or its own), padded with `input_bits` (a spare row, dropped)."""
    frame = pl.DataFrame({"v": values}).with_row_index("vi")
    if spec.kind == "qgrams":
        max_len = int(values.str.len_chars().max() or 0)
        long = frame.select("vi", _qgram_items(pl.col("v"), spec.label, p, max_len)
                            .alias("item")).explode("item").drop_nulls("item")
    else:
        long = frame.select("vi", (pl.lit(spec.label + p.separator) + pl.col("v")).alias("item"))
    uniq = long["item"].unique(maintain_order=True)
    table = np.stack(_positions_of_items(uniq.to_list(), secret, p, cache))  # (items, k)
    item_idx = long["item"].replace_strict(uniq, np.arange(uniq.len()),
                                           return_dtype=pl.Int64).to_numpy()
    owner = np.repeat(long["vi"].to_numpy().astype(np.int64), spec.hashes)
    pos = table[item_idx].reshape(-1)
    counts = np.bincount(owner, minlength=values.len())
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    col = np.arange(owner.size) - start[owner]  # owner is sorted: items come value by value
    out = np.full((values.len(), max(int(counts.max(initial=0)), 1)), p.input_bits,
                  dtype=np.int64)
    out[owner, col] = pos
    return out


def _bits_t(components: pl.DataFrame, secret: bytes, p: BloomParams,
            cache: dict[str, np.ndarray]) -> np.ndarray:
    """(input_bits, rows) bool: the input filters of `components`, one row per bit (the
    diffusion then gathers whole contiguous rows, ~30x faster than gathering columns).
    Positions are computed per distinct component value, then scattered to the rows."""
    n = components.height
    bits = np.zeros((p.input_bits + 1, n), dtype=bool)  # last row: padding sink
    for spec in p.items:
        for comp in spec.components:
            col = components[comp].cast(pl.String)
            present = col.is_not_null().to_numpy()
            if not present.any():
                continue
            uniq = col.drop_nulls().unique(maintain_order=True)
            table = _value_table(uniq, spec, secret, p, cache)
            rows = np.flatnonzero(present)
            vidx = col.filter(col.is_not_null()).replace_strict(
                uniq, np.arange(uniq.len()), return_dtype=pl.Int64).to_numpy()
            bits[table[vidx], rows[:, None]] = True
    return bits[: p.input_bits]


def _pack_t(bits_t: np.ndarray) -> np.ndarray:
    """(bits, rows) bool -> (rows, bits/64) int64, lane L bit b = bit 64 L + b."""
    packed = np.packbits(np.ascontiguousarray(bits_t.T), axis=1, bitorder="little")
    return packed.view("<i8").astype(np.int64, copy=False)


def encode_array(components: pl.DataFrame, secret: bytes, *, hardened: bool = True,
                 p: BloomParams = PARAMS) -> np.ndarray:
    """(rows, lanes) int64 of the encoded filters, row-aligned with `components`."""
    missing = [c for c in p.components if c not in components.columns]
    if missing:
        raise ValueError("components frame lacks " + ", ".join(missing))
    lanes = (p.output_bits if hardened else p.input_bits) // 64
    out = np.empty((components.height, lanes), dtype=np.int64)
    mix = diffusion_matrix(secret, p) if hardened else None
    cache: dict[str, np.ndarray] = {}
    for start in range(0, components.height, CHUNK_ROWS):
        bits = _bits_t(components.slice(start, CHUNK_ROWS), secret, p, cache)
        if mix is not None:
            mixed = bits[mix[:, 0] % p.input_bits]
            for i in range(1, mix.shape[1]):
                np.bitwise_xor(mixed, bits[mix[:, i] % p.input_bits], out=mixed)
            # A complemented slot (index >= input_bits) flips its output bit: XOR with the
            # parity of the row's complemented slots, without materialising the complement.
            flip = np.flatnonzero((mix >= p.input_bits).sum(axis=1) % 2)
            mixed[flip] = ~mixed[flip]
            bits = mixed
        out[start:start + bits.shape[1]] = _pack_t(bits)
    return out


def encode(components: pl.DataFrame, secret: bytes, *, hardened: bool = True) -> pl.DataFrame:
    """The lanes (`LANES`, Int64) of each row of `components`, same row order."""
    arr = encode_array(components, secret, hardened=hardened)
    names = LANES if hardened else PARAMS.lanes(PARAMS.input_bits)
    return pl.DataFrame({name: arr[:, i] for i, name in enumerate(names)},
                        schema={name: pl.Int64 for name in names})


# --- similarity -----------------------------------------------------------------------------

def _as_array(lanes: pl.DataFrame | np.ndarray) -> np.ndarray:
    if isinstance(lanes, pl.DataFrame):
        cols = [c for c in lanes.columns if c.startswith(PARAMS.lane_prefix)]
        return lanes.select(cols).to_numpy().astype(np.int64)
    return np.asarray(lanes, dtype=np.int64)


def similarity(a_lanes: pl.DataFrame | np.ndarray, b_lanes: pl.DataFrame | np.ndarray, *,
               hardened: bool = True) -> np.ndarray:
    """Row-wise similarity of two aligned sets of filters: 1 - Hamming / bits on the hardened
    output (the centre computes the same with bit_count in SQL), Dice on the control."""
    a = _as_array(a_lanes).view(np.uint64)
    b = _as_array(b_lanes).view(np.uint64)
    if hardened:
        ham = np.bitwise_count(a ^ b).sum(axis=1)
        return 1.0 - ham / (64 * a.shape[1])
    inter = np.bitwise_count(a & b).sum(axis=1).astype(np.float64)
    size = (np.bitwise_count(a).sum(axis=1) + np.bitwise_count(b).sum(axis=1)).astype(
        np.float64)
    return np.divide(2 * inter, size, out=np.zeros_like(inter), where=size > 0)


# --- components -----------------------------------------------------------------------------

def components_of(prepared: pl.DataFrame) -> pl.DataFrame:
    """The `COMPONENTS` columns of a frame prepared by the agency (prepare_components)."""
    return prepared.select([pl.col(c).cast(pl.String) for c in COMPONENTS])


def _clean(values: Sequence[object] | pl.Series | None, n: int) -> pl.Series:
    if values is None:
        return pl.Series([None] * n, dtype=pl.String)
    s = (pl.Series(values).cast(pl.String).str.strip_chars().str.to_uppercase()
         .str.replace_all(r"\s+", " "))
    return s.set(s.str.len_chars() == 0, None) if s.len() else s


def components_from(*, nom: Sequence[object] | pl.Series, prenom: Sequence[object] | pl.Series,
                    date_naissance: Sequence[object] | pl.Series,
                    sexe: Sequence[object] | pl.Series | None = None,
                    nom_usage: Sequence[object] | pl.Series | None = None,
                    commune: Sequence[object] | pl.Series | None = None) -> pl.DataFrame:
    """The components frame from plain lists (already normalised names, as ingested; case and
    spaces are tidied only). `date_naissance`: dates or ISO "YYYY-MM-DD" strings (null: no date
    item); `sexe`: 1 / 2; `commune`: INSEE code."""
    n = len(nom)
    dates = pl.Series(
        [d.isoformat() if isinstance(d, dt.date) else d for d in date_naissance],
        dtype=pl.String)
    parts = dates.str.extract_groups(r"^(\d{4})-(\d{2})-(\d{2})$")
    frame = pl.DataFrame({
        "nom": _clean(nom, n),
        "nom_usage": _clean(nom_usage, n),
        "prenom1": _clean(prenom, n).str.extract(r"^(\S+)", 1),
        "jour": parts.struct.field("3"),
        "mois": parts.struct.field("2"),
        "annee": parts.struct.field("1"),
        "sexe": _clean(sexe, n),
        "code_commune": _clean(commune, n),
    })
    if frame.height != n:
        raise ValueError("components_from: lists of different lengths")
    return frame.select(COMPONENTS)
