"""Identifier scan of a pseudonymised export: a gate that judges columns, not coincidences.

The pseudonymise step (and the central run, again) refuses an export in which:

- a handle is not exactly 32 lower-case hex characters, or a token column is not Int64 or holds
  more small integers than 64 random bits would (`format_jeton`, see `_small_token_values`);
- a dated column other than the allowed ones exists (`colonne_date`), an integer looks like a
  NIR (`nir`), or any string cell looks like a NIR, a date or a phone number;
- a coded column (role, prestations, situation_familiale, css, nir_statut, quartier,
  code_commune...) holds a value outside its declared domain (`hors_domaine`). The domains are
  read from the export contract (the suites `pipeline/shared/suites/<agency>_export.yaml` and
  `<agency>_detection.yaml`), the
  one declaration both sides read (a column it leaves open is scanned as a free column);
- (agency side) a free column, one with no declared domain, holds an exact name, address, phone
  number or NIR of the extract (`nom_ou_adresse`);
- a Bloom-filter lane of the residue export (pipeline/shared/bloom.py `LANES`) is not Int64
  (`format_filtre`). Its 64-bit words are random bit patterns, never read as numbers: the NIR
  range check would flag about 1 word in 10,000 by chance.

A coded column is never compared with the names of the extract: a person called « Al » or
« Rsa » must not block an export whose `prestations` column says AL or RSA. A name planted in a
coded column is still caught, by its domain. Findings are counts per column and check, never
values.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import polars as pl

from pipeline.common.errors import PipelineError
from pipeline.common.tables import read_parquet
from pipeline.shared.attributes import ALLOWED_DATE_COLUMNS
from pipeline.shared.bloom import LANES
from pipeline.shared.contract import malformed_handle
from pipeline.shared.kanonymity import STRUCTURE as HANDLE_COLUMNS  # the two handles
from pipeline.shared.providers import PROVIDERS

PATTERNS = {
    # NIR: sex digit, year, month (01-12, 20-99 for unknown/overseas), department (2A/2B), 13/15
    "nir": r"(^|[^0-9A-Za-z])[1-478]\s?\d{2}\s?(0[1-9]|1[0-2]|[2-9]\d)\s?(\d{2}|2[AB])\s?\d{3}"
    r"\s?\d{3}(\s?\d{2})?([^0-9A-Za-z]|$)",
    "date": r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{2,4}",
    "telephone": r"(\+33\s?|0)[1-9]([\s.-]?\d{2}){4}",
}
# Identifying columns of the ingested extract a free export column must never repeat.
NAME_COLUMNS = {
    "caf": ["nom_naissance", "nom_usage", "prenom1", "prenoms", "adresse", "telephone", "nir"],
    "cpam": ["nom", "prenom1", "prenoms", "adresse", "nir"],
}
MIN_NAME_LEN = 2
# A token is 64 keyed random bits: |v| < 2^52 (a NIR, a date, a phone number or an amount read
# as a number) happens for one token in 2^11 by chance.
SMALL_TOKEN = 2**52
P_SMALL_TOKEN = 2.0**-11
IN_SET = "expect_column_values_to_be_in_set"
MATCH_REGEX = "expect_column_values_to_match_regex"


class LeakageFound(PipelineError):
    """The export carries something identifying: nothing is written."""

    def __init__(self, scan: dict) -> None:
        self.scan = scan
        what = ", ".join(f"{f['colonne']} ({f['controle']} : {f['nombre']})"
                         for f in scan["findings"])
        hint = ""
        if any(f["controle"] == "hors_domaine" for f in scan["findings"]):
            hint = (" ; hors_domaine : valeur absente du domaine que le contrat d'export déclare "
                    "pour cette colonne")
        super().__init__(f"export refusé : données identifiantes détectées dans {what}{hint}")


@dataclass(frozen=True)
class Domain:
    """Declared values of a coded column: a closed set, or a regular expression."""

    values: tuple[str, ...] | None = None
    regex: str | None = None

    def outside(self) -> pl.Expr:
        """True for a (non-null) cell `v` outside the domain."""
        v = pl.col("v").cast(pl.String)
        if self.values is not None:
            return ~v.is_in(list(self.values))
        return ~v.str.contains(str(self.regex))


def _suite_domains(agency: str) -> dict[str, Domain]:
    from pipeline.shared.suite_spec import available_stages, load_suite

    out: dict[str, Domain] = {}
    # the export for the linking operator and the detection file for the detecting operator
    # (contract 6): the coded columns' domains are declared in either
    stages = [f"{agency}_export", f"{agency}_detection"]
    for exp in [e for stage in stages if stage in available_stages()
                for e in load_suite(stage).expectations]:
        col, kwargs = exp.get("column"), exp.get("kwargs") or {}
        if not isinstance(col, str):
            continue
        if exp["type"] == IN_SET and "value_set" in kwargs:
            out[col] = Domain(values=tuple(str(v) for v in kwargs["value_set"]))
        elif exp["type"] == MATCH_REGEX and "regex" in kwargs:
            out[col] = Domain(regex=str(kwargs["regex"]))
    return out


@cache
def export_domains(agency: str | None) -> dict[str, Domain]:
    """Coded export columns of `agency` and their domain, as the export contract's suites say,
    and the feature catalogue's `valeurs` for its features (contract 6: a feature such as
    `statut_css` no longer leaves in a column, but an export made without an allow-list, or a
    detection file, is still judged by its declared domain)."""
    if agency not in NAME_COLUMNS:
        return {}
    from pipeline.shared.features import load_catalogue

    catalogue = load_catalogue()
    features = {name: Domain(values=tuple(str(v) for v in f.valeurs))
                for name in catalogue.names(str(agency))
                if (f := catalogue.features[name]).valeurs}
    return {**features, **_suite_domains(str(agency))}


def _bad_hex(col: str) -> pl.Expr:
    """Count of cells that are not exactly 32 lower-case hex characters."""
    c = pl.col(col)
    return malformed_handle(c).sum().alias(col)


def _small_token_values(values: pl.Series) -> int:
    """Cells of an Int64 token column with |v| < 2^52, counted when there are more than chance
    allows (mean + 6 standard deviations + 3): a column of raw numbers (NIRs, dates) is caught
    and counted; a lone planted number among random tokens cannot be told from chance."""
    known = values.drop_nulls()
    small = int((known.abs() < SMALL_TOKEN).sum()) if known.len() else 0
    mean = known.len() * P_SMALL_TOKEN
    return small if small > mean + 6 * mean**0.5 + 3 else 0


def _distinct_cells(series: pl.Series) -> pl.DataFrame:
    """Distinct non-null string cells of a column (lists exploded) with their counts: the
    checks run on distinct values only, the counts keep the findings exact."""
    if series.dtype == pl.List(pl.String):
        series = series.explode()
    return series.drop_nulls().alias("v").value_counts(name="n")


def _leaked_values(ingested: pl.DataFrame, agency: str | None, values: pl.Series) -> pl.Series:
    """Those of `values` that are an exact name, address, phone number or NIR of the extract."""
    cols = NAME_COLUMNS.get(agency or "") or sorted(set(NAME_COLUMNS["caf"])
                                                    | set(NAME_COLUMNS["cpam"]))
    probe = values.str.strip_chars().unique().implode()
    hits = []
    for col in cols:
        if col in ingested.columns:
            cells = ingested[col].cast(pl.String).str.strip_chars()
            hits.append(cells.filter(cells.is_in(probe)).unique())
    if not hits:
        return pl.Series("v", [], dtype=pl.String)
    found = pl.concat(hits).unique()
    return found.filter(found.str.len_chars() >= MIN_NAME_LEN)


def scan_frame(export: pl.DataFrame, ingested: pl.DataFrame | None = None,
               agency: str | None = None) -> dict:
    """Scan an export frame; returns {ok, rows, findings: [{colonne, controle, nombre}]}."""
    findings: list[dict] = []
    agency = PROVIDERS[agency].modele if agency in PROVIDERS else agency  # its data contract
    domains = export_domains(agency)

    def found(col: str, check: str, n: int) -> None:
        if n:
            findings.append({"colonne": col, "controle": check, "nombre": int(n)})

    for col, dtype in export.schema.items():
        if col in LANES:
            if dtype != pl.Int64:
                found(col, "format_filtre", export.height)
            continue
        if col in HANDLE_COLUMNS:
            found(col, "format_jeton", export.select(_bad_hex(col)).item()
                  if dtype == pl.String else export.height)
            continue
        if col.startswith("tok_"):
            found(col, "format_jeton", _small_token_values(export[col])
                  if dtype == pl.Int64 else export.height)
            continue
        if dtype in (pl.Date, pl.Datetime) and col not in ALLOWED_DATE_COLUMNS:
            found(col, "colonne_date", int(export[col].is_not_null().sum()))
        elif dtype.is_integer():
            v = export[col].drop_nulls().cast(pl.Int64, strict=False)
            found(col, "nir", int(((v >= 10**12) & (v < 10**15)).sum()))
        elif dtype in (pl.String, pl.List(pl.String)):
            cells = _distinct_cells(export[col])
            for check, pattern in PATTERNS.items():
                found(col, check, int(cells.filter(pl.col("v").str.contains(pattern))["n"].sum()))
            if col in domains:
                found(col, "hors_domaine",
                      int(cells.filter(domains[col].outside())["n"].sum()))
            elif ingested is not None and cells.height:
                leaked = _leaked_values(ingested, agency, cells["v"]).implode()
                found(col, "nom_ou_adresse",
                      int(cells.filter(pl.col("v").str.strip_chars().is_in(leaked))["n"].sum()))
    return {"ok": not findings, "rows": export.height, "findings": findings}


def scan_export(export_file: Path, ingested_file: Path | None = None,
                agency: str | None = None) -> dict:
    """File version of `scan_frame` (callable centrally without the ingested file)."""
    export = read_parquet(Path(export_file), "export")
    ingested = read_parquet(Path(ingested_file), "extrait normalisé") if ingested_file else None
    return scan_frame(export, ingested, agency)
