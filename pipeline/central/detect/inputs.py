"""Read and check the central inputs: the two pseudonymised exports and the links.

Every problem names the file and the column (and the row when there is one); nothing here
ever prints a value, since even a handle is better kept out of error messages.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.common.errors import InputError
from pipeline.common.tables import read_parquet
from pipeline.shared.features import load_catalogue

_STRUCTURE = {
    "handle": pl.String,
    "foyer": pl.String,
    "opposition": pl.Boolean,
}
_FEATURES = load_catalogue()


def _features(agency: str, optional: bool) -> dict[str, pl.DataType]:
    return {
        f.name: f.dtype
        for f in _FEATURES.features.values()
        if f.agence == agency and f.optionnel == optional
    }


# The central side reads features only (pipeline/shared/features.yaml), never an amount, an age
# or a CSS date. Optional features (absent from an export -> null): aah_taux_plein.
CAF_COLUMNS = {**_STRUCTURE, **_features("caf", False), "date_reference": pl.Date}
CAF_OPTIONAL = _features("caf", True)
CPAM_COLUMNS = {**_STRUCTURE, **_features("cpam", False), "date_reference": pl.Date}
LINK_COLUMNS = {"caf_handle": pl.String, "cpam_handle": pl.String, "pass": pl.String}


@dataclass(frozen=True)
class CentralInputs:
    caf: pl.DataFrame
    cpam: pl.DataFrame
    links: pl.DataFrame
    reference_date: dt.date
    warnings: tuple[str, ...]


def read_table(
    path: Path,
    columns: dict[str, pl.DataType],
    label: str,
    optional: dict[str, pl.DataType] | None = None,
) -> pl.DataFrame:
    df = read_parquet(path, label, required=list(columns))
    optional = optional or {}
    df = df.with_columns(
        [pl.lit(None, dtype=t).alias(c) for c, t in optional.items() if c not in df.columns]
    )
    columns = {**columns, **optional}
    for name, dtype in columns.items():
        try:
            df = df.with_columns(pl.col(name).cast(dtype, strict=True))
        except Exception as exc:
            raise InputError(path, f"type inattendu (attendu {dtype})", column=name) from exc
    return df.select(list(columns))


def first_bad_row(df: pl.DataFrame, mask: pl.Expr) -> int | None:
    idx = df.with_row_index("_r").filter(mask)["_r"]
    return None if idx.is_empty() else int(idx[0]) + 1


def check_keys(df: pl.DataFrame, path: Path, label: str) -> pl.DataFrame:
    """Handles must be present and unique; an opposed row may lack its foyer (kept alone)."""
    df = df.with_columns(
        pl.when(pl.col("foyer").is_null() & pl.col("opposition").fill_null(False))
        .then(pl.lit("opposition:") + pl.col("handle"))
        .otherwise(pl.col("foyer"))
        .alias("foyer")
    )
    for col in ("handle", "foyer"):
        row = first_bad_row(df, pl.col(col).is_null())
        if row is not None:
            raise InputError(path, f"{col} vide dans le {label}", line=row, column=col)
    row = first_bad_row(df, pl.col("handle").is_duplicated())
    if row is not None:
        raise InputError(path, f"handle en double dans le {label}", line=row, column="handle")
    return df


def reference_date(df: pl.DataFrame, path: Path) -> dt.date:
    dates = (
        df.filter(~pl.col("opposition").fill_null(False))["date_reference"].drop_nulls().unique()
    )
    if dates.len() != 1:
        raise InputError(
            path,
            f"{dates.len()} dates de référence distinctes (une seule attendue)",
            column="date_reference",
        )
    return dates[0]


def read_inputs(caf_path: Path, cpam_path: Path, links_path: Path) -> CentralInputs:
    """Load and cross-check the three central inputs."""
    caf = read_table(caf_path, CAF_COLUMNS, "fichier CAF pseudonymisé", CAF_OPTIONAL)
    cpam = read_table(cpam_path, CPAM_COLUMNS, "fichier CPAM pseudonymisé", {})
    links = read_table(links_path, LINK_COLUMNS, "fichier de liens")
    caf = check_keys(caf, caf_path, "fichier CAF")
    cpam = check_keys(cpam, cpam_path, "fichier CPAM")
    for col, other, path_label in (("caf_handle", caf, "CAF"), ("cpam_handle", cpam, "CPAM")):
        row = first_bad_row(links, pl.col(col).is_null() | pl.col(col).is_duplicated())
        if row is not None:
            raise InputError(
                links_path, "liens non un-pour-un (handle vide ou en double)", line=row, column=col
            )
        row = first_bad_row(links, ~pl.col(col).is_in(other["handle"].implode()))
        if row is not None:
            raise InputError(
                links_path, f"handle absent du fichier {path_label}", line=row, column=col
            )
    r = reference_date(caf, caf_path)
    warnings = []
    r_cpam = reference_date(cpam, cpam_path)
    if r_cpam != r:
        warnings.append(
            f"dates de référence différentes : CAF {r:%d/%m/%Y}, CPAM {r_cpam:%d/%m/%Y} ; "
            "la date CAF est appliquée"
        )
    return CentralInputs(caf, cpam, links, r, tuple(warnings))
