"""Outcome feedback: read the filled CCAS lists back, hit rates per rule and quartier.

The CCAS worker records « Résultat du contact » (drop-down of fieldwork.yaml) and « Date du
contact » in the list itself (XLSX or CSV); the agency reads the files back by the household
reference column, computes the rates, and writes a small-cell suppressed copy for sharing.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import openpyxl
import polars as pl

from pipeline.agency.reidentify.fieldwork import fieldwork
from pipeline.agency.reidentify.lists import CONTACT_DATE, OUTCOME, REFERENCE
from pipeline.common.errors import InputError
from pipeline.common.files import check_private
from pipeline.common.tables import write_csv
from pipeline.shared.suppression import suppressed_frame

LIST_SHEET = "Liste"


def _listed(listes_dir: Path) -> pl.DataFrame:
    path = Path(listes_dir) / "listes.parquet"
    if not path.exists():
        raise InputError(path, "listes introuvables : lancez d'abord la ré-identification")
    check_private(path)
    return pl.read_parquet(path)


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%d")  # type: ignore[union-attr]
    return str(value)


def _read_xlsx(path: Path) -> pl.DataFrame:
    """Rows under the header row of the « Liste » sheet, with their physical line numbers."""
    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        ws = wb[LIST_SHEET] if LIST_SHEET in wb.sheetnames else wb.active
        rows = [[_cell_text(v) for v in r] for r in ws.iter_rows(values_only=True)]
    finally:
        wb.close()
    start = next((i for i, r in enumerate(rows) if REFERENCE in r and OUTCOME in r), None)
    if start is None:
        raise InputError(path, f"ligne d'en-tête introuvable (« {REFERENCE} », « {OUTCOME} »)")
    header = rows[start]
    width = len(header)
    body = [(r + [""] * width)[:width] for r in rows[start + 1 :]]
    keep = [i for i, h in enumerate(header) if h in (REFERENCE, OUTCOME, CONTACT_DATE)]
    data = {header[i]: [r[i] for r in body] for i in keep}
    return pl.DataFrame(data, schema=dict.fromkeys(data, pl.String)).with_columns(
        (pl.int_range(pl.len()) + start + 2).alias("_ligne")
    )


def _read_csv(path: Path) -> pl.DataFrame:
    raw = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    try:
        df = pl.read_csv(io.BytesIO(raw), separator=";", infer_schema=False)
    except pl.exceptions.PolarsError as exc:
        raise InputError(path, f"CSV illisible ({type(exc).__name__})") from exc
    return df.rename({c: c.strip() for c in df.columns}).with_columns(
        (pl.int_range(pl.len()) + 2).alias("_ligne")
    )


def _read_one(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise InputError(path, "fichier de retours introuvable")
    df = _read_xlsx(path) if path.suffix.lower() == ".xlsx" else _read_csv(path)
    for col in (REFERENCE, OUTCOME):
        if col not in df.columns:
            raise InputError(path, "colonne obligatoire absente", line=1, column=col)
    if CONTACT_DATE not in df.columns:
        df = df.with_columns(pl.lit(None, dtype=pl.String).alias(CONTACT_DATE))
    return df.select(
        pl.col(REFERENCE).str.strip_chars().alias("foyer"),
        pl.col(OUTCOME).fill_null("").str.strip_chars().alias("resultat"),
        pl.col(CONTACT_DATE).fill_null("").str.strip_chars().alias("date_contact"),
        pl.lit(str(path)).alias("_fichier"),
        "_ligne",
    ).filter(pl.col("foyer").fill_null("") != "")


def feedback_files(paths: Sequence[Path]) -> list[Path]:
    """Files given, a folder standing for its lists (XLSX, or CSV when it has no XLSX)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.glob("cible_*.xlsx")) + sorted(p.glob("a_verifier.xlsx"))
            out += found or sorted(p.glob("cible_*.csv")) + sorted(p.glob("a_verifier.csv"))
        else:
            out.append(p)
    return out


def read_outcomes(paths: Sequence[Path]) -> pl.DataFrame:
    """foyer, code (outcome code), date_contact; refuses unknown choices, bad dates, duplicates."""
    files = feedback_files(paths)
    if not files:
        raise InputError(Path(paths[0]) if paths else Path("."), "aucune liste remplie trouvée")
    fb = pl.concat([_read_one(f) for f in files])
    labels = {o.libelle.casefold(): o.code for o in fieldwork().outcomes}
    fb = fb.with_columns(
        pl.col("resultat").str.to_lowercase().replace_strict(labels, default=None).alias("code"),
        pl.coalesce(
            pl.col("date_contact").str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False),
            pl.col("date_contact").str.to_date("%d/%m/%Y", strict=False),
        ).alias("date"),
    )
    checks = (
        (
            (pl.col("resultat") != "") & pl.col("code").is_null(),
            OUTCOME,
            "résultat inconnu ; choix possibles : "
            + ", ".join(o.libelle for o in fieldwork().outcomes),
        ),
        (
            (pl.col("date_contact") != "") & pl.col("date").is_null(),
            CONTACT_DATE,
            "date invalide (JJ/MM/AAAA attendu)",
        ),
        (pl.col("foyer").is_duplicated(), REFERENCE, "référence en double"),
    )
    for cond, column, message in checks:
        bad = fb.filter(cond)
        if bad.height:
            raise InputError(
                Path(bad["_fichier"][0]), message, line=int(bad["_ligne"][0]), column=column
            )
    return fb


def load_feedback(
    listes_dir: Path, feedback: Path | Sequence[Path], out_dir: Path, *,
    threshold: int | None = None,
) -> dict:
    """Read filled lists back; write hit rates (internal) and a small-cell suppressed copy."""
    paths = [feedback] if isinstance(feedback, (str, Path)) else list(feedback)
    all_listed = _listed(listes_dir)
    listed = all_listed.filter(pl.col("liste") == "cible")
    fb = read_outcomes(paths)
    unknown = fb.filter(~pl.col("foyer").is_in(all_listed["foyer"].implode()))
    if unknown.height:
        raise InputError(
            Path(unknown["_fichier"][0]),
            "référence inconnue de cet organisme",
            line=int(unknown["_ligne"][0]),
            column=REFERENCE,
        )
    outcomes = fieldwork().outcomes
    codes = [o.code for o in outcomes]
    reached = [o.code for o in outcomes if o.joint]
    per = (
        listed.join(fb.select("foyer", "code"), on="foyer", how="left")
        .explode("regles")
        .rename({"regles": "regle"})
    )
    report = (
        per.group_by("regle", "quartier")
        .agg(
            pl.len().alias("listes"),
            pl.col("code").is_not_null().sum().alias("renseignes"),
            pl.col("code").is_in(reached).sum().alias("joints"),
            *[(pl.col("code") == c).sum().alias(c) for c in codes],
        )
        .with_columns(
            (pl.col("joints") / pl.col("listes")).round(3).alias("taux_joints"),
            (pl.col("droit_ouvert") / pl.col("joints")).round(3).alias("taux_droit_ouvert"),
        )
        .sort("regle", "quartier")
    )
    out = Path(out_dir)
    internal = write_csv(report, out / "retours_taux.csv", private=True)
    rule_ids = sorted(per["regle"].unique().to_list())
    quartiers = sorted(per["quartier"].unique().to_list())
    frames = []
    for measure in ("listes", "renseignes", "joints", *codes):
        lookup = {
            (r, q): int(v) for r, q, v in report.select("regle", "quartier", measure).iter_rows()
        }
        matrix = [[lookup.get((r, q), 0) for q in quartiers] for r in rule_ids]
        frames.append(suppressed_frame(measure, rule_ids, quartiers, matrix, threshold))
    shared = write_csv(
        pl.concat(frames) if frames else pl.DataFrame(), out / "retours_diffusable.csv",
        private=True,
    )
    recorded = fb.filter(pl.col("code").is_not_null())
    return {
        "fichiers_lus": len(feedback_files(paths)),
        "lignes_lues": fb.height,
        "resultats_renseignes": recorded.height,
        "foyers_listes": listed.height,
        "sans_retour": int(
            listed.filter(~pl.col("foyer").is_in(recorded["foyer"].implode())).height
        ),
        "fichiers": [str(internal), str(shared)],
    }
