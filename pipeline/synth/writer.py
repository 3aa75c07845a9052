"""Raw extract files exactly in the default layouts (docs/EXTRACTS.md), plus a few deliberately
malformed rows.

Lines are assembled as strings with polars (no per-row Python), then written atomically: the CAF
file in UTF-8 with LF, the CPAM file in Windows-1252 with CRLF (as exported from a Windows tool).
Malformed rows (noise-scaled, default 0.2 % of rows per file) give the ingest's rejection report
something to do; each is listed in truth/malformed.csv and counted in meta.json.
"""

from __future__ import annotations

import io
from datetime import date

import numpy as np
import polars as pl

CAF_COLUMNS = [
    "matricule", "role", "nir", "nom_naissance", "nom_usage", "prenoms", "date_naissance",
    "sexe", "telephone", "adresse", "code_postal", "code_commune", "code_iris",
    "situation_familiale", "residence_alternee", "ressources_12m", "prestations",
    "date_extraction",
]
CPAM_COLUMNS = [
    "nir_beneficiaire", "nir_ouvrant_droit", "rang_gemellaire", "qualite", "nom", "prenom",
    "date_naissance", "sexe", "adresse", "code_postal", "code_commune", "css", "css_debut",
    "css_fin", "medecin_traitant", "date_extraction",
]
# The MSA's extract (pipeline/agency/ingest/layouts/msa.yaml): the CPAM's content under the MSA's
# own
# names (C2S, the other name of the CSS), UTF-8 with LF, ISO dates.
MSA_NAMES = {"nir_beneficiaire": "nir", "prenom": "prenoms", "css": "c2s", "css_debut": "c2s_debut",
             "css_fin": "c2s_fin"}
MSA_COLUMNS = [MSA_NAMES.get(c, c) for c in CPAM_COLUMNS]
MALFORMED_RATE = 0.002
CAF_MALFORMED = {  # kind -> column it breaks
    "date_impossible": "date_naissance",
    "montant_non_numerique": "ressources_12m",
    "role_invalide": "role",
    "ligne_courte": None,
}
CPAM_MALFORMED = {
    "date_impossible": "date_naissance",
    "qualite_invalide": "qualite",
    "css_invalide": "css",
    "ligne_courte": None,
}
SHORT_FIELDS = 9  # a truncated row keeps only its first fields


def _z(col: str, width: int) -> pl.Expr:
    return pl.col(col).cast(pl.String).str.zfill(width)


def _euros(col: str) -> pl.Expr:
    """Decimal comma, two decimals, no thousands separator: 15000,00."""
    cents = (pl.col(col) * 100).round(0).cast(pl.Int64)
    return pl.concat_str([(cents // 100).cast(pl.String), pl.lit(","),
                          (cents % 100).cast(pl.String).str.zfill(2)])


def caf_strings(df: pl.DataFrame, ref: date) -> pl.DataFrame:
    """Every CAF column as a string (null = empty field)."""
    return df.select(
        pl.col("matricule"), pl.col("role"), pl.col("nir"), pl.col("nom_naissance"),
        pl.col("nom_usage"), pl.col("prenoms"),
        date_naissance=pl.concat_str([_z("by", 4), _z("bm", 2), _z("bd", 2)], separator="-"),
        sexe=pl.col("sexe").cast(pl.String),
        telephone=pl.col("telephone"), adresse=pl.col("adresse"),
        code_postal=pl.col("code_postal"), code_commune=pl.col("code_commune"),
        code_iris=pl.col("code_iris"), situation_familiale=pl.col("situation_familiale"),
        residence_alternee=pl.col("residence_alternee"),
        ressources_12m=_euros("ressources_12m"), prestations=pl.col("prestations"),
        date_extraction=pl.lit(ref.isoformat()),
    )


def cpam_strings(df: pl.DataFrame, ref: date, *, iso: bool = False) -> pl.DataFrame:
    """Every CPAM column as a string (null = empty field); dates JJ/MM/AAAA, or ISO."""
    fr = "%Y-%m-%d" if iso else "%d/%m/%Y"
    birth = ([_z("by", 4), _z("bm", 2), _z("bd", 2)] if iso
             else [_z("bd", 2), _z("bm", 2), _z("by", 4)])
    return df.select(
        pl.col("nir_beneficiaire"), pl.col("nir_ouvrant_droit"),
        rang_gemellaire=pl.col("rang_gemellaire").cast(pl.String),
        qualite=pl.col("qualite"), nom=pl.col("nom"), prenom=pl.col("prenom"),
        date_naissance=pl.concat_str(birth, separator="-" if iso else "/"),
        sexe=pl.col("sexe").cast(pl.String), adresse=pl.col("adresse"),
        code_postal=pl.col("code_postal"), code_commune=pl.col("code_commune"),
        css=pl.col("css"), css_debut=pl.col("css_debut").dt.strftime(fr),
        css_fin=pl.col("css_fin").dt.strftime(fr), medecin_traitant=pl.col("medecin_traitant"),
        date_extraction=pl.lit(ref.strftime(fr)),
    )


def malform(
    rng: np.random.Generator, s: pl.DataFrame, kinds: dict[str, str | None], noise: float,
    iso: bool,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Break a few rows; returns the string frame (+ `_short` flag) and the list of breakages.

    Only the hit rows are touched (gather -> rewrite -> scatter).
    """
    n = s.height
    idx = np.flatnonzero(rng.random(n) < min(MALFORMED_RATE * noise, 1.0))
    names = list(kinds)
    code = rng.integers(0, len(names), len(idx))
    date = pl.col("date_naissance")
    bad = {
        "date_naissance": pl.concat_str([date.str.slice(0, 4), pl.lit("-02-31")]) if iso
        else pl.concat_str([pl.lit("31/02/"), date.str.slice(6, 4)]),
        "ressources_12m": pl.lit("NC"),
        "role": pl.lit("CONJ"),
        "qualite": pl.lit("CONJOINT"),
        "css": pl.lit("OUI"),
    }
    short = np.zeros(n, dtype=bool)
    updates = {}
    for i, (kname, col) in enumerate(kinds.items()):
        rows = idx[code == i]
        if col is None:
            short[rows] = kname == "ligne_courte"
        elif len(rows):
            series = updates.get(col, s[col])
            updates[col] = series.scatter(rows, s[rows].select(bad[col]).to_series())
    out = s.with_columns(*updates.values(), _short=pl.Series(short))
    report = pl.DataFrame({"row": idx, "kind": pl.Series(names, dtype=pl.String).gather(code)},
                          schema={"row": pl.Int64, "kind": pl.String}).with_columns(
        column=pl.col("kind").replace_strict({a: b or "" for a, b in kinds.items()},
                                             return_dtype=pl.String),
    )
    return out, report


def header(columns: list[str], eol: str) -> bytes:
    return (";".join(columns) + eol).encode()


def render(s: pl.DataFrame, columns: list[str], eol: str) -> bytes:
    """One `;`-joined line per row (short rows truncated), as UTF-8 bytes, no header."""
    full = pl.concat_str([pl.col(c).fill_null("") for c in columns], separator=";")
    short = pl.concat_str([pl.col(c).fill_null("") for c in columns[:SHORT_FIELDS]], separator=";")
    lines = s.select(line=full)
    idx = np.flatnonzero(s["_short"].to_numpy())
    if len(idx):  # truncate the few short rows only
        lines = lines.with_columns(lines["line"].scatter(idx, s[idx].select(short).to_series()))
    buf = io.BytesIO()
    lines.write_csv(buf, include_header=False, quote_style="never", line_terminator=eol)
    return buf.getvalue()
