"""No raw identifier from the extracts in any central file or any log line of the chain.

The identifiers are taken from the raw extracts themselves (NIRs with and without key, birth
dates in every format used, surnames and given names, phone numbers, street addresses), then
searched for in every file the central side receives or writes — Parquet cell by cell, text
files as text — and in the whole console output of the chain.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

from pipeline.agency.ingest.normalise.names import lexicon

CONTRACT_CODES = {"INCONNU"}
NAME_MIN_LEN = 4  # shorter given names ("LEA") collide with ordinary words in French text


def raw_identifiers(dataset: Path) -> dict[str, set[str]]:
    caf = pl.read_csv(dataset / "raw" / "caf_extract.csv", separator=";", infer_schema=False)
    cpam = pl.read_csv(
        dataset / "raw" / "cpam_extract.csv",
        separator=";",
        infer_schema=False,
        encoding="windows-1252",
    )
    nirs = {
        v
        for col in (caf["nir"], cpam["nir_beneficiaire"], cpam["nir_ouvrant_droit"])
        for v in col.drop_nulls().to_list()
        if len(v) >= 13
    }
    nirs |= {v[:13] for v in nirs}
    dates = set(caf["date_naissance"].drop_nulls()) | set(cpam["date_naissance"].drop_nulls())
    # The extracts' reference date is run metadata, not an identifier, even when a newborn
    # happens to share it.
    dates -= set(caf["date_extraction"].drop_nulls()) | set(cpam["date_extraction"].drop_nulls())
    dates = both_date_formats(dates)
    names = set()
    for col in (
        caf["nom_naissance"],
        caf["nom_usage"],
        caf["prenoms"],
        cpam["nom"],
        cpam["prenom"],
    ):
        for value in col.drop_nulls().to_list():
            # Case kept: the report's own French words ("petit") are not the surname "PETIT".
            names |= {w for w in re.split(r"[\s,'-]+", value) if len(w) >= NAME_MIN_LEN}
            if len(value) >= NAME_MIN_LEN:
                names.add(value)
    # Contract code values are not identifiers, even when an extract uses the same word as a
    # placeholder first name ("INCONNU" is also the CSS status ingest could not read).
    names -= CONTRACT_CODES
    # Public place names of the territory table (the report names quartiers: "Saint-Michel",
    # "Saint-Georges-des-Groseillers") are not identifiers, even when a first name is a part.
    territory = pl.read_csv(dataset / "territory" / "iris_quartiers.csv", separator=";",
                            infer_schema=False)
    places = [v for c in ("nom_quartier", "nom_commune") if c in territory.columns
              for v in territory[c].drop_nulls().to_list()]
    names -= {w for v in places for w in re.split(r"[\s,'-]+", v)}
    # Placeholders the agency writes for an unknown name (« INCONNU »...) identify nobody, and
    # INCONNU is also the CSS code for a status ingest could not read.
    names = {n for n in names if n.upper() not in lexicon().placeholders}
    phones = {v for v in caf["telephone"].drop_nulls().to_list() if len(v) >= 8}
    addresses = set(caf["adresse"].drop_nulls()) | set(cpam["adresse"].drop_nulls())
    return {"nir": nirs, "date": dates, "name": names, "phone": phones, "address": addresses}


def both_date_formats(dates: set[str]) -> set[str]:
    iso = {d for d in dates if re.fullmatch(r"\d{4}-\d{2}-\d{2}", d)}
    fr = {d for d in dates if re.fullmatch(r"\d{2}/\d{2}/\d{4}", d)}
    return (
        iso
        | fr
        | {f"{d[8:10]}/{d[5:7]}/{d[:4]}" for d in iso}
        | {f"{d[6:]}-{d[3:5]}-{d[:2]}" for d in fr}
    )


def central_files(out: Path) -> list[Path]:
    files = [p for side in ("transfer", "central") for p in (out / side).rglob("*") if p.is_file()]
    files.append(out / "audit.jsonl")
    return sorted(files)


# Dates the contract allows centrally (CSS contract dates, reference date): a CSS start date may
# coincide with somebody's birth date without being one. Every other column is scanned.
CONTRACT_DATE_COLUMNS = {"css_debut", "css_fin", "date_reference"}


def parquet_values(path: Path) -> set[str]:
    df = pl.read_parquet(path)
    values: set[str] = set()
    for name, dtype in df.schema.items():
        if name in CONTRACT_DATE_COLUMNS and dtype == pl.Date:
            continue
        col = df[name]
        if isinstance(dtype, pl.List):
            col = col.explode()
        values |= {str(v) for v in col.drop_nulls().cast(pl.Utf8).unique().to_list()}
    return values


def leaks_in_values(values: set[str], ids: dict[str, set[str]]) -> list[str]:
    found = []
    for kind, pool in ids.items():
        hits = values & pool
        if kind == "name":
            hits = {h for h in hits if len(h) >= NAME_MIN_LEN}
        if hits:
            found.append(f"{kind}: {len(hits)} value(s)")
    return found


def leaks_in_text(text: str, ids: dict[str, set[str]]) -> list[str]:
    found = []
    words = set(re.findall(r"[^\W_]+", text))
    for kind in ("nir", "date", "phone"):
        hits = {v for v in ids[kind] if v in text}
        if hits:
            found.append(f"{kind}: {len(hits)}")
    name_hits = ids["name"] & words
    if name_hits:
        found.append(f"name: {sorted(name_hits)[:5]}")
    addr_hits = {a for a in ids["address"] if len(a) > 10 and a in text}
    if addr_hits:
        found.append(f"address: {len(addr_hits)}")
    return found


def test_central_files_and_logs_carry_no_raw_identifier(chain_run):
    ids = raw_identifiers(chain_run.dataset)
    assert all(ids.values()), "the extracts must contain identifiers for this test to mean much"
    problems = {}
    for path in central_files(chain_run.out):
        if path.suffix == ".parquet":
            found = leaks_in_values(parquet_values(path), ids)
        elif path.suffix in {".png", ".xlsx"}:
            continue
        else:
            found = leaks_in_text(path.read_text(encoding="utf-8", errors="replace"), ids)
        if found:
            problems[str(path.relative_to(chain_run.out))] = found
    log_found = leaks_in_text(chain_run.log, ids)
    if log_found:
        problems["<console output of the chain>"] = log_found
    assert not problems, problems


def test_the_scan_itself_finds_a_planted_identifier(chain_run, tmp_path):
    """Guard against a scan that cannot fail: plant one NIR and one name, expect both found."""
    ids = raw_identifiers(chain_run.dataset)
    nir = sorted(ids["nir"])[0]
    name = sorted(n for n in ids["name"] if n.isalpha() and len(n) >= 6)[0]
    planted = tmp_path / "planted.parquet"
    pl.DataFrame({"handle": ["x"], "note": [nir], "other": [name]}).write_parquet(planted)
    assert len(leaks_in_values(parquet_values(planted), ids)) == 2
    assert leaks_in_text(f"rapport ... {name} ... {nir}", ids)


@pytest.mark.parametrize("agency", ["caf", "cpam"])
def test_agency_local_tables_are_owner_only(chain_run, agency):
    for name in ("handles.parquet", "ingested.parquet"):
        mode = (chain_run.out / agency / name).stat().st_mode & 0o777
        assert mode & 0o077 == 0, f"{agency}/{name} has mode {oct(mode)}"
