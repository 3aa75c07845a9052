"""Agency-local inputs of re-identification: handles table, opposition list, contact history.

These files never leave the agency. The handles table must be owner-only (check_private), and
the opposition list and the contact history are matched on the agency's own identifiers
(NIR through ingested.parquet, matricule for the CAF) without ever echoing a value.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from pipeline.common.errors import InputError, PipelineError
from pipeline.common.files import check_private
from pipeline.common.tables import read_parquet
from pipeline.shared.providers import is_benefits

HANDLE_COLUMNS = ("handle", "foyer", "line")


def read_handles(workdir: Path, agency: str) -> pl.DataFrame:
    """workdir/handles.parquet, refused when group/others can read it."""
    path = Path(workdir) / "handles.parquet"
    check_private(path)
    df = read_parquet(path, "table des handles", required=HANDLE_COLUMNS)
    if "opposition" not in df.columns:
        df = df.with_columns(pl.lit(False).alias("opposition"))
    return df.with_columns(pl.col("opposition").fill_null(False))


def months_before(ref: dt.date, months: int) -> dt.date:
    """Same day `months` calendar months earlier, clamped to the end of a shorter month."""
    total = ref.year * 12 + (ref.month - 1) - months
    year, month = divmod(total, 12)
    month += 1
    for day in range(ref.day, 0, -1):
        try:
            return dt.date(year, month, day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def _read_csv(path: Path, what: str) -> pl.DataFrame:
    try:
        raw = pl.read_csv(path, separator=";", infer_schema=False, encoding="utf8")
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(path, f"{what} illisible ({type(exc).__name__})") from exc
    return raw.rename({c: c.strip().lower().lstrip("\ufeff") for c in raw.columns})


def _ingested_nirs(workdir: Path) -> pl.DataFrame:
    path = Path(workdir) / "ingested.parquet"
    if not path.exists():
        raise InputError(path, "extrait ingéré introuvable : nécessaire pour rapprocher les NIR")
    check_private(path)
    return pl.read_parquet(path, columns=["line", "nir"])


FACT_SOURCES = ("role", "qualite", "date_naissance", "ressources_12m", "css_debut", "css_fin")


def read_ingested(workdir: Path) -> pl.DataFrame:
    """The agency's ingested table, reduced to the columns the lists' household facts use."""
    path = Path(workdir) / "ingested.parquet"
    if not path.exists():
        raise InputError(path, "extrait ingéré introuvable : nécessaire pour décrire les foyers")
    check_private(path)
    present = pl.read_parquet_schema(path)
    return pl.read_parquet(path, columns=["line", *[c for c in FACT_SOURCES if c in present]])


def opposed_lines(path: Path, agency: str, workdir: Path, handles: pl.DataFrame) -> pl.Series:
    """Source lines of the people on the agency's opposition list (format of pseudonymise)."""
    from pipeline.agency.pseudonymise.opposition import read_opposition

    opp = read_opposition(Path(path), agency)
    ingested = _ingested_nirs(workdir)
    lines = ingested.filter(pl.col("nir").is_in(opp.nirs.implode()))["line"]
    if is_benefits(agency) and opp.matricules.len():
        if "matricule" not in handles.columns:
            raise InputError(
                path,
                "opposition par matricule mais la table des handles n'a pas de matricule",
                column="matricule",
            )
        by_dossier = handles.filter(pl.col("matricule").is_in(opp.matricules.implode()))["line"]
        lines = pl.concat([lines, by_dossier])
    return lines.unique().sort()


def recently_contacted_lines(
    path: Path, workdir: Path, handles: pl.DataFrame, reference: dt.date, hold_months: int
) -> tuple[pl.Series, int]:
    """Lines of households contacted on or after `reference` - hold_months; and file rows read.

    CAF history: `matricule;date_contact`; CPAM history: `nir;date_contact` (ISO or JJ/MM/AAAA).
    """
    raw = _read_csv(Path(path), "historique de contacts")
    if "date_contact" not in raw.columns:
        raise InputError(path, "colonne obligatoire absente", line=1, column="date_contact")
    key = "matricule" if "matricule" in raw.columns else "nir" if "nir" in raw.columns else None
    if key is None:
        raise InputError(
            path, "colonne obligatoire absente (matricule ou nir)", line=1, column="matricule"
        )
    raw = raw.with_row_index("_i").with_columns(
        pl.coalesce(
            pl.col("date_contact").str.strip_chars().str.to_date("%Y-%m-%d", strict=False),
            pl.col("date_contact").str.strip_chars().str.to_date("%d/%m/%Y", strict=False),
        ).alias("_d"),
        pl.col(key).str.replace_all(r"\s", "").alias("_k"),
    )
    bad = raw.filter(pl.col("_d").is_null() | pl.col("_k").is_null() | (pl.col("_k") == ""))
    if bad.height:
        col = "date_contact" if bad["_d"][0] is None else key
        raise InputError(
            path, "valeur absente ou date invalide", line=int(bad["_i"][0]) + 2, column=col
        )
    cutoff = months_before(reference, hold_months)
    recent = raw.filter((pl.col("_d") >= cutoff) & (pl.col("_d") <= reference))["_k"]
    if key == "matricule":
        if "matricule" not in handles.columns:
            raise PipelineError(
                "la table des handles n'a pas de matricule : historique CAF inutilisable"
            )
        lines = handles.filter(pl.col("matricule").is_in(recent.implode()))["line"]
    else:
        nirs = recent.str.to_uppercase().str.slice(0, 13)
        ingested = _ingested_nirs(workdir)
        lines = ingested.filter(pl.col("nir").is_in(nirs.implode()))["line"]
    return lines.unique().sort(), raw.height


FIGURE_SOURCES = ("line", "matricule", "role", "sexe", "nir_statut", "date_naissance",
                  "date_extraction", "residence_alternee", "code_commune",
                  "situation_familiale", "ressources_12m", "prestations")


def ceiling_figures(workdir: Path, handles: pl.DataFrame,
                    reference: dt.date) -> pl.DataFrame | None:
    """Per CAF foyer: CSS resources and both ceilings, computed here from the agency's own data.

    The centre only had the household's position relative to the ceilings (a feature): the
    figures that make a list useful are filled in at the agency, by the same computation
    (pipeline/shared/features.py) and the same table of the reference date.
    """
    from pipeline.shared import css_params
    from pipeline.shared.attributes import add_attributes
    from pipeline.shared.features import caf_household_figures

    path = Path(workdir) / "ingested.parquet"
    check_private(path)
    if not set(FIGURE_SOURCES) <= set(pl.read_parquet_schema(path)):
        return None  # not a full CAF extract: the list shows what the extract has
    ingested = pl.read_parquet(path)
    people = add_attributes(ingested, "caf", None).join(
        handles.select("line", "foyer"), on="line", how="inner"
    )
    sel = css_params.select_period(reference)
    return caf_household_figures(people, sel).select(
        "foyer", "ressources_css", "plafond_gratuite", "plafond_participation"
    )
