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
TOKEN_HEX = 32
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


def _bad_hex(col: str) -> pl.Expr:
    """Count of cells that are not exactly 32 lower-case hex characters."""
    c = pl.col(col)
    return ((c.str.len_bytes() != TOKEN_HEX) | c.str.contains("[^0-9a-f]")).sum().alias(col)


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
    hex_cols = [c for c, t in export.schema.items() if _is_handle_or_token(c) and t == pl.String]
    if hex_cols:
        for col, n in export.select([_bad_hex(c) for c in hex_cols]).row(0, named=True).items():
            found(col, "format_jeton", int(n))
    for col, dtype in export.schema.items():
        if _is_handle_or_token(col):
            if dtype != pl.String:
                found(col, "format_jeton", export.height)
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
    """Public surname ranking shipped with faker fr_FR (its fr_FR surnames are listed by
    frequency). Its first-name lists are alphabetical, not ranked, so they make no reference:
    the oracle attack covers first names (and is the upper bound anyway)."""
    from faker.providers.person.fr_FR import Provider

    s = pl.Series(list(Provider.last_names)).str.normalize("NFKD")
    s = s.str.replace_all(r"[^\x00-\x7f]", "").str.to_uppercase().str.replace_all(r"['-]", " ")
    return {"nom": s.to_list()}


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
        vc = s.value_counts()
        out[col] = {"non_nuls": n, "part_distincts": round(vc.height / n, 4),
                    "frequence_max": round(int(vc["count"].max()) / n, 4)}
    return out


def _ranked(lf: pl.LazyFrame, col: str) -> pl.LazyFrame:
    """Rank values of `col` by frequency within each stratum `g` (ties broken by value)."""
    return (lf.group_by("g", col).len()
            .sort(["g", "len", col], descending=[False, True, False])
            .with_columns(rang=pl.int_range(pl.len()).over("g"))
            .drop("len"))


def _attack(tokens: pl.Series, truth: pl.Series, reference: list[str] | None = None,
            strata: pl.Series | None = None) -> pl.LazyFrame:
    """Lazy share of records whose true value the rank-alignment attack recovers.

    `reference` is an ordered public ranking; None means the oracle ranking (the true
    distribution, per stratum when `strata` is given).
    """
    if strata is None:
        strata = pl.Series("g", [0], dtype=pl.Int32).new_from_index(0, tokens.len())
    lf = pl.LazyFrame({"t": tokens, "v": truth, "g": strata.cast(pl.Int32)}).filter(
        pl.col("t").is_not_null() & pl.col("v").is_not_null() & pl.col("g").is_not_null())
    tok_rank = _ranked(lf, "t")
    if reference is None:
        guesses = tok_rank.join(_ranked(lf, "v").rename({"v": "guess"}), on=["g", "rang"],
                                how="left")
    else:
        ref = pl.LazyFrame({"guess": pl.Series(reference, dtype=pl.String)}).unique(
            maintain_order=True).with_row_index("rang").with_columns(pl.col("rang").cast(
                pl.Int64))
        guesses = tok_rank.with_columns(pl.col("rang").cast(pl.Int64)).join(ref, on="rang",
                                                                             how="left")
    hit = lf.join(guesses.select("g", "t", "guess"), on=["g", "t"], how="left")
    return hit.select(share=(pl.col("guess") == pl.col("v")).fill_null(False).mean()
                      .fill_null(0.0).round(5))


def _collect(plan: dict[str, dict[str, pl.LazyFrame | None]]) -> dict:
    """Run every attack of `plan` in parallel (one collect_all)."""
    flat = [(k, m, lf) for k, ms in plan.items() for m, lf in ms.items() if lf is not None]
    values = pl.collect_all([lf for _, _, lf in flat])
    out: dict = {k: dict.fromkeys(ms) for k, ms in plan.items()}
    for (k, m, _), v in zip(flat, values, strict=True):
        out[k][m] = float(v["share"][0]) if v.height else 0.0
    return out


def rank_attack(tokens: pl.Series, truth: pl.Series, reference: list[str] | None = None,
                strata: pl.Series | None = None) -> float:
    """Share of records whose true value the rank-alignment attack recovers."""
    return _collect({"a": {"s": _attack(tokens, truth, reference, strata)}})["a"]["s"]


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
    plan: dict[str, dict[str, pl.LazyFrame | None]] = {}
    for tok, (col, is_phon) in ATTACKED.items():
        if tok not in df.columns:
            continue
        truth_col = phon[col] if is_phon else df[col]
        public = ref_phon.get(col) if is_phon else ref.get(col)
        plan[tok] = {
            "oracle_global": _attack(df[tok], truth_col),
            "oracle_par_age": _attack(df[tok], truth_col, strata=df["age"]),
            "public_global": _attack(df[tok], truth_col, public) if public else None,
        }
    if naive_control:
        key = os.urandom(32).hex().encode("ascii")
        engine = get_engine()
        for col in ("nom", "prenom1"):
            tokens = engine(df[col], key)
            plan[f"hmac_non_sale_{col}"] = {
                "oracle_global": _attack(tokens, df[col]),
                "oracle_par_age": _attack(tokens, df[col], strata=df["age"]),
                "public_global": _attack(tokens, df[col], ref.get(col)),
            }
    shares = _collect(plan)
    attack = {k: v for k, v in shares.items() if not k.startswith("hmac_non_sale_")}
    result["attaque_rang"] = attack
    if naive_control:
        result["controle_naif"] = {k: v for k, v in shares.items()
                                   if k.startswith("hmac_non_sale_")}
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
