"""The attacker's model of what a record-level Bloom filter carries, and the bit matrix it reads.

Kerckhoffs: the encoding scheme is public (bloom.yaml), only the key is secret. So the attacker
knows a filter holds field-labelled bigrams of the surname and first name, labelled birth-date
items (day, month, year), the sex and the commune code, and can list the same items for any
plaintext record it holds (a public list, a leaked file). These items drive the graph attack's
plaintext side and the oracle frequencies of the pattern-mining attack; scoring reads the
plaintext columns (`nom`, `prenom1`, `naiss_annee`, `naiss_mois`, `naiss_jour`, `sexe`)
directly.
"""

from __future__ import annotations

import numpy as np
import polars as pl

PLAIN_COLUMNS = ("nom", "prenom1", "naiss_annee", "naiss_mois", "naiss_jour", "sexe")
NAME_FIELDS = {"nom": "n", "prenom1": "p"}  # field -> item label
DATE_FIELDS = {"naiss_annee": "a", "naiss_mois": "m", "naiss_jour": "j", "sexe": "s"}
CODE_FIELDS = {"code_commune": "c"}  # codes as text (Corsica: 2A004)
PAD = "_"


def bits_from_lanes(lanes: pl.DataFrame | np.ndarray) -> np.ndarray:
    """(n, 64 L) uint8 0/1 matrix from the residue lanes (Int64 words, two's complement), bit
    j of word w at column 64 w + j; a numpy 0/1 matrix passes through (tests' stand-in)."""
    if isinstance(lanes, np.ndarray):
        return (lanes != 0).astype(np.uint8)
    cols = sorted(c for c in lanes.columns if c.startswith("bf_"))
    words = lanes.select(cols).to_numpy().astype(np.int64).view(np.uint64)
    as_bytes = np.ascontiguousarray(words.astype("<u8")).view(np.uint8).reshape(words.shape[0], -1)
    return np.unpackbits(as_bytes, axis=1, bitorder="little")


def _name_items(df: pl.DataFrame, col: str, lab: str) -> pl.DataFrame:
    """(_r, item): the padded bigrams of one name field, labelled (`n:MA`)."""
    s = pl.col(col).cast(pl.String).str.to_uppercase().str.replace_all(r"[^A-Z]", "")
    chars = (df.select("_r", c=pl.concat_str([pl.lit(PAD), s, pl.lit(PAD)]).str.split(""))
             .filter(pl.col("c").list.len() > 2).explode("c"))
    return (chars.with_columns(nxt=pl.col("c").shift(-1).over("_r"))
            .drop_nulls("nxt")
            .select("_r", item=pl.concat_str([pl.lit(f"{lab}:"), pl.col("c"), pl.col("nxt")])))


def item_lists(plain: pl.DataFrame) -> pl.Series:
    """Per record, its labelled items (sorted list of strings): `n:MA`, `p:_J`, `a:1985`..."""
    df = plain.with_row_index("_r")
    parts = [_name_items(df, col, lab) for col, lab in NAME_FIELDS.items() if col in df.columns]
    for col, lab in DATE_FIELDS.items():
        if col in df.columns:
            width = 4 if col == "naiss_annee" else 2
            parts.append(df.select("_r", item=pl.concat_str([
                pl.lit(f"{lab}:"), pl.col(col).cast(pl.Int64).cast(pl.String).str.zfill(width)]))
                .drop_nulls())
    for col, lab in CODE_FIELDS.items():
        if col in df.columns:
            parts.append(df.select("_r", item=pl.concat_str([pl.lit(f"{lab}:"),
                                                             pl.col(col).cast(pl.String)]))
                         .drop_nulls())
    lists = pl.concat(parts).unique().group_by("_r").agg(pl.col("item").sort())
    return (df.select("_r").join(lists, on="_r", how="left").sort("_r")["item"]
            .fill_null(pl.lit([], dtype=pl.List(pl.String))))


def incidence(items: pl.Series) -> tuple[np.ndarray, list[str]]:
    """(n, I) uint8 record x item matrix and the item vocabulary (sorted)."""
    df = pl.DataFrame({"item": items}).with_row_index("_r").explode("item").drop_nulls("item")
    vocab = df["item"].unique().sort()
    codes = df.join(pl.DataFrame({"item": vocab}).with_row_index("_c"), on="item")
    mat = np.zeros((items.len(), vocab.len()), dtype=np.uint8)
    mat[codes["_r"].to_numpy(), codes["_c"].to_numpy()] = 1
    return mat, vocab.to_list()


def scheme_encode(plain: pl.DataFrame, secret: bytes, *, hardened: bool) -> np.ndarray:
    """(n, bits) filters of plaintext rows under the public scheme (pipeline/shared/bloom.py)
    and a key of the caller's (with the commune item when `plain` has `code_commune`): the
    agency's encoding in the tests and benches, or the attacker's simulation of it under a key
    of its own (Kerckhoffs)."""
    from pipeline.shared import bloom

    iso = plain.select(pl.concat_str([
        pl.col("naiss_annee").cast(pl.Int32).cast(pl.String).str.zfill(4),
        pl.col("naiss_mois").cast(pl.Int32).cast(pl.String).str.zfill(2),
        pl.col("naiss_jour").cast(pl.Int32).cast(pl.String).str.zfill(2)], separator="-"))
    commune = plain["code_commune"] if "code_commune" in plain.columns else None
    comps = bloom.components_from(nom=plain["nom"], prenom=plain["prenom1"],
                                  date_naissance=iso.to_series(), sexe=plain["sexe"],
                                  commune=commune)
    return bits_from_lanes(bloom.encode(comps, secret, hardened=hardened))
