"""Leakage checks on a pseudonymised export: identifier scan and frequency (rank) attack.

`scan_export` is a gate: the pseudonymise step refuses to write an export in which any string
cell looks like a NIR, a date or a phone number, any integer looks like a NIR, a dated column
other than the allowed ones exists, a token or handle is not exactly 32 lower-case hex
characters, or (agency side) an exact name or address of the extract appears. Findings are
counts per column and check, never values.

`frequency_leakage` measures what an attacker holding the export and public name-frequency
tables could recover: rank each name-token column by frequency, align it with a reference ranking
of names, and count the records whose name comes out right (the truth is known at the agency).
Two references: `public` (faker's fr_FR surname list, which is in frequency order) and `oracle`
(the exact name distribution of the extract itself: the best any attacker can do), globally and
per age cohort (an attacker with birth-year name statistics, since the export carries the age).
A naive control, one unsalted HMAC per name field, is attacked the same way for comparison.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from pipeline.common.errors import InputError, PipelineError
from pipeline.pseudonymise.attributes import ALLOWED_DATE_COLUMNS
from pipeline.pseudonymise.hmac_engine import get_engine
from pipeline.pseudonymise.phonetic import encode_unique

HEX32 = r"^[0-9a-f]{32}$"
PATTERNS = {
    # NIR: sex digit, year, month (01-12, 20-99 for unknown/overseas), department (2A/2B), 13/15
    "nir": r"(^|[^0-9A-Za-z])[1-478]\s?\d{2}\s?(0[1-9]|1[0-2]|[2-9]\d)\s?(\d{2}|2[AB])\s?\d{3}"
    r"\s?\d{3}(\s?\d{2})?([^0-9A-Za-z]|$)",
    "date": r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{2,4}",
    "telephone": r"(\+33\s?|0)[1-9]([\s.-]?\d{2}){4}",
}
NAME_COLUMNS = {
    "caf": ["nom_naissance", "nom_usage", "prenom1", "prenoms", "adresse", "telephone"],
    "cpam": ["nom", "prenom1", "prenoms", "adresse"],
}
MIN_NAME_LEN = 2


class LeakageFound(PipelineError):
    """The export carries something identifying: nothing is written."""

    def __init__(self, scan: dict) -> None:
        self.scan = scan
        what = ", ".join(f"{f['colonne']} ({f['controle']} : {f['nombre']})"
                         for f in scan["findings"])
        super().__init__(f"export refusé : données identifiantes détectées dans {what}")


def _is_handle_or_token(col: str) -> bool:
    return col in ("handle", "foyer") or col.startswith("tok_")


def _string_cells(df: pl.DataFrame, col: str) -> pl.Series:
    s = df[col]
    if s.dtype == pl.List(pl.String):
        s = s.explode()
    return s.drop_nulls()


def scan_frame(export: pl.DataFrame, ingested: pl.DataFrame | None = None,
               agency: str | None = None) -> dict:
    """Scan an export frame; returns {ok, rows, findings: [{colonne, controle, nombre}]}."""
    findings: list[dict] = []

    def found(col: str, check: str, n: int) -> None:
        if n:
            findings.append({"colonne": col, "controle": check, "nombre": int(n)})

    names: pl.Series | None = None
    if ingested is not None:
        cols = [c for c in NAME_COLUMNS.get(agency or "", sorted(
            set(NAME_COLUMNS["caf"]) | set(NAME_COLUMNS["cpam"]))) if c in ingested.columns]
        if cols:
            names = pl.concat([ingested[c].cast(pl.String).str.strip_chars() for c in cols])
            names = names.filter(names.str.len_chars() >= MIN_NAME_LEN).unique()
    for col, dtype in export.schema.items():
        if _is_handle_or_token(col):
            if dtype != pl.String:
                found(col, "format_jeton", export.height)
                continue
            found(col, "format_jeton", int((~export[col].drop_nulls().str.contains(HEX32)).sum()))
            continue
        if dtype in (pl.Date, pl.Datetime) and col not in ALLOWED_DATE_COLUMNS:
            found(col, "colonne_date", int(export[col].is_not_null().sum()))
        elif dtype.is_integer():
            v = export[col].drop_nulls().cast(pl.Int64, strict=False)
            found(col, "nir", int(((v >= 10**12) & (v < 10**15)).sum()))
        elif dtype in (pl.String, pl.List(pl.String)):
            cells = _string_cells(export, col)
            for check, pattern in PATTERNS.items():
                found(col, check, int(cells.str.contains(pattern).sum()))
            if names is not None and names.len():
                found(col, "nom_ou_adresse",
                      int(cells.str.strip_chars().is_in(names.implode()).sum()))
    return {"ok": not findings, "rows": export.height, "findings": findings}


def _read(path: Path, what: str) -> pl.DataFrame:
    try:
        return pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(path, f"{what} illisible ({type(exc).__name__})") from exc


def scan_export(export_file: Path, ingested_file: Path | None = None,
                agency: str | None = None) -> dict:
    """File version of `scan_frame` (callable centrally without the ingested file)."""
    export = _read(Path(export_file), "export")
    ingested = _read(Path(ingested_file), "extrait normalisé") if ingested_file else None
    return scan_frame(export, ingested, agency)


# --- frequency / rank-alignment attack -----------------------------------------------------

# token column -> (truth column, phonetic?)
ATTACKED = {
    "tok_nom_a": ("nom", False),
    "tok_nom_phon_a": ("nom", True),
    "tok_prenom_a": ("prenom1", False),
    "tok_prenom_phon_a": ("prenom1", True),
}


def public_reference() -> dict[str, list[str]]:
    """Public name rankings shipped with faker fr_FR (surnames are listed by frequency)."""
    from faker.providers.person.fr_FR import Provider

    def norm(names: list[str]) -> list[str]:
        s = pl.Series(names).str.normalize("NFKD").str.replace_all(r"[^\x00-\x7f]", "")
        return s.str.to_uppercase().str.replace_all(r"['-]", " ").to_list()

    firsts = list(Provider.first_names_male) + list(Provider.first_names_female)
    return {"nom": norm(list(Provider.last_names)), "prenom1": norm(firsts)}


def _uniqueness(export: pl.DataFrame) -> dict:
    out = {}
    for col in export.columns:
        if not col.startswith("tok_"):
            continue
        s = export[col].drop_nulls()
        n = s.len()
        if n == 0:
            out[col] = {"non_nuls": 0}
            continue
        vc = s.value_counts(sort=True)
        out[col] = {"non_nuls": n, "part_distincts": round(vc.height / n, 4),
                    "frequence_max": round(int(vc["count"][0]) / n, 4)}
    return out


def _ranked(df: pl.DataFrame, col: str, by: list[str]) -> pl.DataFrame:
    """Rank values of `col` by frequency within `by` groups (ties broken by value)."""
    counts = df.group_by([*by, col]).len().sort([*by, "len", col],
                                                descending=[*(False for _ in by), True, False])
    return counts.with_columns(rang=pl.int_range(pl.len()).over(by) if by else pl.int_range(
        pl.len())).drop("len")


def rank_attack(tokens: pl.Series, truth: pl.Series, reference: list[str] | None = None,
                strata: pl.Series | None = None) -> float:
    """Share of records whose true value the rank-alignment attack recovers.

    `reference` is an ordered public ranking; None means the oracle ranking (the true
    distribution, per stratum when `strata` is given).
    """
    if strata is None:
        strata = pl.Series("g", [0] * tokens.len(), dtype=pl.Int32)
    df = pl.DataFrame({"t": tokens, "v": truth, "g": strata})
    df = df.filter(pl.col("t").is_not_null() & pl.col("v").is_not_null()
                   & pl.col("g").is_not_null())
    if df.height == 0:
        return 0.0
    tok_rank = _ranked(df, "t", ["g"])
    if reference is None:
        ref = _ranked(df, "v", ["g"]).rename({"v": "guess"})
        guesses = tok_rank.join(ref, on=["g", "rang"], how="left")
    else:
        ref = pl.DataFrame({"guess": reference}).unique(maintain_order=True).with_row_index(
            "rang").with_columns(pl.col("rang").cast(pl.Int64))
        guesses = tok_rank.with_columns(pl.col("rang").cast(pl.Int64)).join(ref, on="rang",
                                                                             how="left")
    hit = df.join(guesses.select("g", "t", "guess"), on=["g", "t"], how="left")
    return round(float((hit["guess"] == hit["v"]).fill_null(False).mean()), 5)


def frequency_leakage_frame(export: pl.DataFrame, truth: pl.DataFrame | None = None,
                            reference_names: dict[str, list[str]] | None = None,
                            *, naive_control: bool = True) -> dict:
    """Uniqueness per token column and, with `truth` (handle, nom, prenom1), the attack."""
    result: dict = {"unicite": _uniqueness(export)}
    if truth is None:
        return result
    ref = reference_names or public_reference()
    age = [pl.col("age")] if "age" in export.columns else [pl.lit(None, pl.Int16).alias("age")]
    df = export.select("handle", *age, *[c for c in ATTACKED if c in export.columns]).join(
        truth, on="handle", how="left")
    phon = {c: encode_unique(df[c]) for c in ("nom", "prenom1")}
    ref_phon = {c: encode_unique(pl.Series(v, dtype=pl.String)).drop_nulls().to_list()
                for c, v in ref.items()}
    attack: dict = {}
    for tok, (col, is_phon) in ATTACKED.items():
        if tok not in df.columns:
            continue
        truth_col = phon[col] if is_phon else df[col]
        public = ref_phon.get(col) if is_phon else ref.get(col)
        attack[tok] = {
            "oracle_global": rank_attack(df[tok], truth_col),
            "oracle_par_age": rank_attack(df[tok], truth_col, strata=df["age"]),
            "public_global": rank_attack(df[tok], truth_col, public) if public else None,
        }
    result["attaque_rang"] = attack
    if naive_control:
        key = os.urandom(32).hex().encode("ascii")
        engine = get_engine()
        naive: dict = {}
        for col in ("nom", "prenom1"):
            tokens = engine(df[col], key)
            naive[f"hmac_non_sale_{col}"] = {
                "oracle_global": rank_attack(tokens, df[col]),
                "oracle_par_age": rank_attack(tokens, df[col], strata=df["age"]),
                "public_global": rank_attack(tokens, df[col], ref.get(col)),
            }
        result["controle_naif"] = naive
    worst = max((v["oracle_global"] for v in attack.values()), default=0.0)
    result["pire_part_retrouvee_global"] = worst
    result["objectif_global_sous_1pct"] = worst < 0.01
    return result


def frequency_leakage(export_file: Path, reference_names: dict[str, list[str]] | None = None,
                      *, handles_file: Path | None = None,
                      ingested_file: Path | None = None) -> dict:
    """File version: with the agency's handles and ingested files, also run the attack."""
    export = _read(Path(export_file), "export")
    truth = None
    if handles_file and ingested_file:
        handles = _read(Path(handles_file), "table des handles")
        ingested = _read(Path(ingested_file), "extrait normalisé")
        nom = "nom_naissance" if "nom_naissance" in ingested.columns else "nom"
        truth = handles.select("handle", "line").join(
            ingested.select("line", pl.col(nom).alias("nom"), "prenom1"), on="line",
            how="left").drop("line")
    return frequency_leakage_frame(export, truth, reference_names)
