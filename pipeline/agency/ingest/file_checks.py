"""File-level refusals that need typed values: no readable date at all, several extraction dates.

Such a file is not a set of bad rows but a wrong file (the other agency's export, a concatenation
of two extracts): rejecting its rows one by one would send an empty or mixed table on to the
centre. The whole file is refused instead, before anything is written.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipeline.agency.ingest.layout import Layout
from pipeline.agency.ingest.normalise.dates import human_format
from pipeline.common.errors import InputError


def check(path: Path, layout: Layout, raw: pl.DataFrame, typed: pl.DataFrame) -> None:
    """Raise InputError when the file's dates are unreadable as a whole or not from one day."""
    rows = ~raw["__ragged"]
    dates = [c for c in layout.columns if c.type == "date"]
    present = raw.filter(rows).select(
        pl.sum_horizontal(
            (pl.col(c.name).str.strip_chars().str.len_bytes() > 0).fill_null(False)
            for c in dates
        ).sum()
    ).item()
    parsed = typed.filter(rows).select(
        pl.sum_horizontal(pl.col(c.name).is_not_null() for c in dates).sum()
    ).item()
    extraction = typed.filter(rows)["date_extraction"].is_not_null().any()
    if present and (not parsed or not extraction):
        first = layout.column("date_extraction")
        raise InputError(
            path,
            f"aucune date du fichier n'est au format attendu {human_format(layout.date_format)} "
            "(extrait de l'autre organisme, ou disposition --layout inadaptée ?)",
            line=int(raw.filter(rows)["line"][0]), column=first.source,
        )
    kept = typed.filter(~pl.col("__rejected") & pl.col("date_extraction").is_not_null())
    days = kept["date_extraction"].value_counts(sort=True)
    if days.height > 1:
        usual = days["date_extraction"][0]
        odd = kept.filter(pl.col("date_extraction") != usual)["line"][0]
        raise InputError(
            path,
            f"plusieurs dates d'extraction dans le même fichier ({days.height} dates "
            "différentes ; cette ligne diffère de la plus fréquente) : un extrait doit provenir "
            "d'une seule extraction",
            line=int(odd), column=layout.column("date_extraction").source,
        )
