"""k-anonymity of what the central operator holds, per household, measured on every run.

The operator sees each export's rows grouped by household handle; without any token, a household
is singled out when no other household shows the same multiset of non-token attribute rows (its
size, roles, sexes, commune, features...). k = the number of households sharing that signature.
Measured on each export alone and on the joined view (a CAF household with the attribute rows of
its linked CPAM persons). Targets (issue 11): k = 1 for under 1 % of households, k < 5 for under
5 %. Side-neutral: the agency's leakage file, the central report and `make evaluate` read it.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from pipeline.shared.separation import FACTOR_PREFIX, PAD_PREFIX

TARGET_K1 = 0.01
TARGET_K_LT5 = 0.05
STRUCTURE = ("handle", "foyer")
_NULL = "\u2205"


def attribute_columns(frame: pl.DataFrame) -> list[str]:
    """Every column the operator can read that is neither a token nor a handle, nor a pad or
    factor of the masked sums (uniform residues, pipeline/shared/separation.py: an attribute
    reading would make every household k = 1 while telling the operator nothing)."""
    return sorted(c for c in frame.columns if c not in STRUCTURE
                  and not c.startswith(("tok_", PAD_PREFIX, FACTOR_PREFIX)))


def _as_text(frame: pl.DataFrame, col: str) -> pl.Expr:
    dtype = frame.schema[col]
    expr = pl.col(col)
    if isinstance(dtype, pl.List):
        expr = expr.list.eval(pl.element().cast(pl.String)).list.sort().list.join(",")
    return expr.cast(pl.String).fill_null(_NULL)


def row_text(frame: pl.DataFrame, columns: list[str]) -> pl.Expr:
    """One string per row: the row's attribute values (null shown as a symbol)."""
    if not columns:
        return pl.lit("")
    return pl.concat_str([_as_text(frame, c) for c in columns], separator="\x1f")


def household_signatures(frame: pl.DataFrame, columns: list[str] | None = None,
                         group: str = "foyer") -> pl.DataFrame:
    """(group, signature): the sorted multiset of the household's attribute rows."""
    columns = attribute_columns(frame) if columns is None else columns
    return (
        frame.select(pl.col(group), row_text(frame, columns).alias("_row"))
        .group_by(group)
        .agg(pl.col("_row").sort().str.join("\x1e").alias("signature"))
    )


def household_codes(frame: pl.DataFrame, columns: list[str] | None = None,
                    group: str = "foyer") -> pl.DataFrame:
    """(group, signature): the partition of `household_signatures`, for counts (k), not for
    display. A household's signature is (its row count, the sum of its rows' 61-bit hashes):
    a multiset hash (equal multisets of rows, equal sums), one grouped sum instead of a string
    sort and join per household (0.97 CPU s to 0.36 on the 1M-row bench export). Two different
    multisets share a signature with probability about 2^-61 per pair of households: a merge
    could only raise k, and among the ~10^12 pairs of 1M households it is about 4e-7 likely."""
    columns = attribute_columns(frame) if columns is None else columns
    codes = frame.select(pl.col(group).alias("_g"), _row_codes(frame, columns).alias("_code"))
    return (codes.group_by("_g")
            .agg(pl.struct(n=pl.len(), h=pl.col("_code").sum()).alias("signature"))
            .rename({"_g": group}))


def _row_code(frame: pl.DataFrame, columns: list[str]) -> pl.Expr:
    return (row_text(frame, columns).hash(seed=0) & (2**61 - 1)).cast(pl.Int64)


def _row_codes(frame: pl.DataFrame, columns: list[str]) -> pl.Series:
    """The 61-bit hash of each row's `row_text`. On plain columns (strings, booleans,
    integers, dates: equal values, equal text) the text is built and hashed once per distinct
    row (an export has a few dozen) and joined back: the same codes for ~1/3 of the CPU of one
    string per row on 1M rows."""
    plain = all(frame.schema[c] in (pl.String, pl.Boolean, pl.Date)
                or frame.schema[c].is_integer() for c in columns)
    if not columns or not plain or frame.height == 0:
        return frame.select(_row_code(frame, columns)).to_series()
    rows = frame.select(columns)
    distinct = rows.unique()
    table = distinct.with_columns(_row_code(distinct, columns).alias("_code"))
    return rows.join(table, on=columns, how="left", nulls_equal=True,
                     maintain_order="left")["_code"]


def summarise(signatures: pl.DataFrame) -> dict[str, Any]:
    """Shares of households with k = 1 and k < 5 (k = households sharing the signature)."""
    n = signatures.height
    if n == 0:
        return {"foyers": 0, "part_k1": None, "part_k_moins_5": None, "k_median": None}
    k = signatures.select(pl.len().over("signature").alias("k"))["k"]
    k1 = float((k == 1).sum()) / n
    k5 = float((k < 5).sum()) / n
    return {
        "foyers": n,
        "part_k1": round(k1, 5),
        "part_k_moins_5": round(k5, 5),
        "k_median": float(k.median()),
        "objectif_k1": TARGET_K1,
        "objectif_k_moins_5": TARGET_K_LT5,
        "objectifs_atteints": k1 < TARGET_K1 and k5 < TARGET_K_LT5,
    }


def export_k(frame: pl.DataFrame, columns: list[str] | None = None,
             group: str = "foyer") -> dict[str, Any]:
    """k-anonymity of one export's households on its non-token attributes. `group`: the
    household column (the foyer handle, or any column in one-to-one with it)."""
    columns = attribute_columns(frame) if columns is None else columns
    return {"colonnes": columns, **summarise(household_codes(frame, columns, group))}


def joined_k(caf: pl.DataFrame, cpam: pl.DataFrame, links: pl.DataFrame) -> dict[str, Any]:
    """k-anonymity of the central joined view: each CAF household with the attribute rows of its
    linked CPAM persons; CPAM households with no link count as households of their own."""
    caf_cols, cpam_cols = attribute_columns(caf), attribute_columns(cpam)
    caf_sig = household_signatures(caf, caf_cols)
    cpam_rows = cpam.select("handle", "foyer", row_text(cpam, cpam_cols).alias("_row"))
    linked = (
        links.select("caf_handle", "cpam_handle")
        .join(caf.select(pl.col("handle").alias("caf_handle"), "foyer"), on="caf_handle")
        .join(cpam_rows.select(pl.col("handle").alias("cpam_handle"), "_row"), on="cpam_handle")
        .group_by("foyer")
        .agg(pl.col("_row").sort().str.join("\x1e").alias("_cpam"))
    )
    joined = caf_sig.join(linked, on="foyer", how="left").select(
        pl.concat_str(["signature", pl.col("_cpam").fill_null("")], separator="\x1d")
        .alias("signature")
    )
    linked_cpam = links["cpam_handle"].implode()
    linked_foyers = cpam.filter(pl.col("handle").is_in(linked_cpam))["foyer"].unique().implode()
    alone = household_signatures(cpam.filter(~pl.col("foyer").is_in(linked_foyers)), cpam_cols)
    signatures = pl.concat(
        [joined, alone.select((pl.lit("cpam:") + pl.col("signature")).alias("signature"))])
    return {"colonnes_caf": caf_cols, "colonnes_cpam": cpam_cols, **summarise(signatures)}
