"""Outcome feedback from the CCAS: a template to fill, and hit rates per rule and quartier.

The template carries only the household reference (random foyer handle), the quartier and the
rules — the CCAS already has names in its lists. The filled file comes back to the agency,
which computes hit rates; the version meant to leave the agency is small-cell suppressed.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import openpyxl
import polars as pl

from pipeline.common.errors import InputError
from pipeline.common.files import check_private, write_bytes
from pipeline.common.tables import write_csv
from pipeline.detect.aggregates import suppressed_frame
from pipeline.reidentify.xlsx import workbook_bytes

OUTCOMES = ("contacte", "bilan_fait", "droit_ouvert", "refus", "injoignable")
TRUE_VALUES = {"o", "oui", "1", "x", "vrai", "true", "y", "yes"}
FALSE_VALUES = {"n", "non", "0", "faux", "false", "no", ""}
HEADER = ["reference", "quartier", "regles", *OUTCOMES]


def _listed(listes_dir: Path) -> pl.DataFrame:
    path = Path(listes_dir) / "listes.parquet"
    if not path.exists():
        raise InputError(path, "listes introuvables : lancez d'abord la ré-identification")
    check_private(path)
    return pl.read_parquet(path)


def write_template(listes_dir: Path, out: Path) -> Path:
    """One row per listed household (targets first, then a_verifier); outcome columns empty."""
    df = _listed(listes_dir).sort([pl.col("liste") != "cible", "quartier", "priorite", "foyer"])
    rows = df.select(
        pl.col("foyer").alias("reference"),
        "quartier",
        pl.col("regles").list.join(","),
        *[pl.lit("", dtype=pl.String).alias(c) for c in OUTCOMES],
    )
    out = Path(out)
    if out.suffix.lower() == ".xlsx":
        wb = openpyxl.Workbook()
        ws = wb.active
        ws.title = "Retours"
        ws.append(HEADER)
        for row in rows.iter_rows():
            ws.append(list(row))
        for letter, width in zip("ABCDEFGH", (34, 12, 45, 10, 10, 12, 8, 12), strict=True):
            ws.column_dimensions[letter].width = width
        ws.freeze_panes = "A2"
        return write_bytes(out, workbook_bytes(wb, dt.datetime(2000, 1, 1)), private=True)
    return write_csv(rows, out, private=True)


def _read_feedback(path: Path) -> pl.DataFrame:
    path = Path(path)
    if not path.exists():
        raise InputError(path, "fichier de retours introuvable")
    if path.suffix.lower() == ".xlsx":
        ws = openpyxl.load_workbook(path, read_only=True, data_only=True).active
        values = [["" if v is None else str(v) for v in r] for r in ws.iter_rows(values_only=True)]
        if not values:
            raise InputError(path, "fichier vide", line=1)
        header = [h.strip().lower() for h in values[0]]
        df = (
            pl.DataFrame(values[1:], schema=header, orient="row")
            if len(values) > 1
            else pl.DataFrame(schema=dict.fromkeys(header, pl.String))
        )
    else:
        raw = path.read_bytes()
        if raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        df = pl.read_csv(io.BytesIO(raw), separator=";", infer_schema=False)
        df = df.rename({c: c.strip().lower() for c in df.columns})
    for col in ("reference", *OUTCOMES):
        if col not in df.columns:
            raise InputError(path, "colonne obligatoire absente", line=1, column=col)
    return df


def load_feedback(listes_dir: Path, feedback: Path, out_dir: Path, *, threshold: int = 11) -> dict:
    """Read the filled template back; write hit rates (internal) and a suppressed copy."""
    listed = _listed(listes_dir).filter(pl.col("liste") == "cible")
    fb = _read_feedback(feedback).with_row_index("_i")
    norm = {c: pl.col(c).fill_null("").str.strip_chars().str.to_lowercase() for c in OUTCOMES}
    for col, expr in norm.items():
        bad = fb.filter(~expr.is_in(list(TRUE_VALUES | FALSE_VALUES)))
        if bad.height:
            raise InputError(
                feedback,
                "valeur attendue : O / N (ou vide)",
                line=int(bad["_i"][0]) + 2,
                column=col,
            )
    unknown = fb.filter(~pl.col("reference").is_in(_listed(listes_dir)["foyer"].implode()))
    if unknown.height:
        raise InputError(
            feedback,
            "référence inconnue de cet organisme",
            line=int(unknown["_i"][0]) + 2,
            column="reference",
        )
    dup = fb.filter(pl.col("reference").is_duplicated())
    if dup.height:
        raise InputError(
            feedback, "référence en double", line=int(dup["_i"][0]) + 2, column="reference"
        )
    flags = fb.select(
        pl.col("reference").alias("foyer"),
        *[expr.is_in(list(TRUE_VALUES)).alias(c) for c, expr in norm.items()],
    )
    per = (
        listed.join(flags, on="foyer", how="left")
        .with_columns([pl.col(c).fill_null(False) for c in OUTCOMES])
        .explode("regles")
        .rename({"regles": "regle"})
    )
    report = (
        per.group_by("regle", "quartier")
        .agg(pl.len().alias("listes"), *[pl.col(c).sum().alias(c) for c in OUTCOMES])
        .with_columns(
            (pl.col("droit_ouvert") / pl.col("contacte")).round(3).alias("taux_droit_ouvert"),
            (pl.col("contacte") / pl.col("listes")).round(3).alias("taux_contact"),
        )
        .sort("regle", "quartier")
    )
    out = Path(out_dir)
    internal = write_csv(report, out / "retours_taux.csv", private=True)
    rule_ids = sorted(per["regle"].unique().to_list())
    quartiers = sorted(per["quartier"].unique().to_list())
    frames = []
    for measure in ("listes", *OUTCOMES):
        lookup = {
            (r, q): int(v) for r, q, v in report.select("regle", "quartier", measure).iter_rows()
        }
        matrix = [[lookup.get((r, q), 0) for q in quartiers] for r in rule_ids]
        frames.append(suppressed_frame(measure, rule_ids, quartiers, matrix, threshold))
    shared = write_csv(
        pl.concat(frames) if frames else pl.DataFrame(), out / "retours_diffusable.csv"
    )
    return {
        "retours_lus": fb.height,
        "foyers_listes": listed.height,
        "sans_retour": int(listed.filter(~pl.col("foyer").is_in(fb["reference"].implode())).height),
        "fichiers": [str(internal), str(shared)],
    }
