"""Droit d'opposition (CRPA L.114-8 II): flag opposed persons before anything leaves.

An opposed person stays in the export as a row with `opposition = true`, tokens only and every
attribute null: the central side can then exclude any record of the other agency that links to
them (and the household around them), without learning anything else. Lines of the opposition
file that match nobody are counted, never silently ignored.

CAF file: `matricule;nir` (a line with an empty nir opposes the whole dossier); CPAM file: `nir`.
NIRs may be written with or without their 2-digit key and with spaces.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import polars as pl

from pipeline.common.errors import InputError
from pipeline.shared.providers import modele

REQUIRED = {"caf": ("matricule", "nir"), "cpam": ("nir",)}


@dataclasses.dataclass(frozen=True)
class OppositionList:
    nirs: pl.Series
    matricules: pl.Series  # CAF only: whole dossiers
    lines: int


def _nir13(expr: pl.Expr) -> pl.Expr:
    s = expr.str.replace_all(r"\s", "").str.to_uppercase().str.slice(0, 13)
    return pl.when(s.str.len_chars() == 13).then(s)


def read_opposition(path: Path, agency: str) -> OppositionList:
    """Read and check the agency's opposition file (errors name file, line and column)."""
    try:
        raw = pl.read_csv(path, separator=";", infer_schema=False, encoding="utf8-lossy")
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(path, f"liste d'opposition illisible ({type(exc).__name__})") from exc
    cols = {c.strip().lower().lstrip("\ufeff"): c for c in raw.columns}
    for col in REQUIRED[agency]:
        if col not in cols:
            raise InputError(path, "colonne obligatoire absente", line=1, column=col)
    frame = raw.select([pl.col(cols[c]).str.strip_chars().alias(c)
                        for c in REQUIRED[modele(agency)]])
    frame = frame.with_row_index("i").with_columns(nir13=_nir13(pl.col("nir")))
    bad_nir = frame.filter(pl.col("nir").is_not_null() & (pl.col("nir") != "")
                           & pl.col("nir13").is_null())
    if bad_nir.height:
        raise InputError(path, "NIR mal formé (13 ou 15 caractères attendus)",
                         line=int(bad_nir["i"][0]) + 2, column="nir")
    if agency == "caf":
        empty = frame.filter(pl.col("nir13").is_null()
                             & (pl.col("matricule").is_null() | (pl.col("matricule") == "")))
        if empty.height:
            raise InputError(path, "ni matricule ni NIR", line=int(empty["i"][0]) + 2,
                             column="matricule")
        matricules = frame.filter(pl.col("nir13").is_null())["matricule"]
    else:
        empty = frame.filter(pl.col("nir13").is_null())
        if empty.height:
            raise InputError(path, "NIR absent", line=int(empty["i"][0]) + 2, column="nir")
        matricules = pl.Series("matricule", [], dtype=pl.String)
    return OppositionList(frame["nir13"].drop_nulls().unique(), matricules.unique(), frame.height)


def flag_opposition(df: pl.DataFrame, agency: str,
                    opp: OppositionList | None) -> tuple[pl.DataFrame, dict]:
    """Add the `opposition` column; return counts (persons flagged, file lines unmatched)."""
    if opp is None:
        return df.with_columns(opposition=pl.lit(False)), {
            "liste_fournie": False, "personnes_opposees": 0, "lignes_sans_correspondance": 0}
    by_nir = pl.col("nir").is_in(opp.nirs.implode())
    flag = by_nir
    if agency == "caf":
        flag = by_nir | pl.col("matricule").is_in(opp.matricules.implode())
    out = df.with_columns(opposition=flag.fill_null(False))
    matched_nirs = out.filter(pl.col("nir").is_in(opp.nirs.implode()))["nir"].n_unique()
    unmatched = opp.nirs.len() - matched_nirs
    if agency == "caf":
        matched_m = df.filter(pl.col("matricule").is_in(opp.matricules.implode()))[
            "matricule"].n_unique()
        unmatched += opp.matricules.len() - matched_m
    return out, {"liste_fournie": True, "lignes_fichier": opp.lines,
                 "personnes_opposees": int(out["opposition"].sum()),
                 "lignes_sans_correspondance": int(unmatched)}
