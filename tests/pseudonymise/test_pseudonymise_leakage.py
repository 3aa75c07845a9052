"""Leakage gate (planted identifiers must be caught) and the rank-alignment attack."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import polars as pl
import pytest
from helpers_pseudonymise import KEY

from pipeline.agency.pseudonymise.core import Materials, build, pseudonymise
from pipeline.agency.pseudonymise.leakage import (
    LeakageFound,
    frequency_leakage,
    frequency_leakage_frame,
    rank_attack,
    scan_export,
    scan_frame,
)
from pipeline.agency.pseudonymise.synthetic import ingested
from pipeline.common.tables import write_parquet


@pytest.fixture(scope="module")
def caf_case() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    df = ingested("caf", 2000, seed=4)
    export, handles, _ = build(df, "caf", KEY, seed=2)
    return df, export, handles


def _checks(scan: dict) -> set[tuple[str, str]]:
    return {(f["colonne"], f["controle"]) for f in scan["findings"]}


def test_clean_export_passes(caf_case) -> None:
    df, export, _ = caf_case
    scan = scan_frame(export, df, "caf")
    assert scan == {"ok": True, "rows": export.height, "findings": []}


@pytest.mark.parametrize(("column", "value", "check"), [
    ("position_plafond_css", "2850561169001", "nir"),
    ("position_plafond_css", "2 85 05 61 169 001 42", "nir"),
    ("type_foyer", "1985-05-17", "date"),
    ("type_foyer", "17/05/1985", "date"),
    ("position_plafond_css", "06 12 34 56 78", "telephone"),
])
def test_planted_identifier_is_caught(caf_case, column: str, value: str, check: str) -> None:
    df, export, _ = caf_case
    planted = export.with_columns(
        pl.when(pl.int_range(pl.len()) == 7).then(pl.lit(value)).otherwise(pl.col(column))
        .alias(column))
    scan = scan_frame(planted, df, "caf")
    assert not scan["ok"]
    assert (column, check) in _checks(scan)
    assert value not in str(scan)  # findings never carry the value


def test_planted_name_and_address_in_coded_columns_are_caught(caf_case) -> None:
    df, export, _ = caf_case
    name = df["nom_naissance"][0]
    address = df["adresse"][0]
    planted = export.with_columns(
        type_foyer=pl.when(pl.int_range(pl.len()) == 3).then(pl.lit(name))
        .otherwise(pl.col("type_foyer")),
        position_plafond_css=pl.when(pl.int_range(pl.len()) == 4).then(pl.lit(address))
        .otherwise(pl.col("position_plafond_css")),
    )
    for scan in (scan_frame(planted, df, "caf"), scan_frame(planted, None, "caf")):
        # a coded column is judged by its declared domain: caught with or without the extract
        assert {("type_foyer", "hors_domaine"),
                ("position_plafond_css", "hors_domaine")} <= _checks(scan)
        assert name not in str(scan) and address not in str(scan)


def test_planted_name_in_free_column_is_caught(caf_case) -> None:
    df, export, _ = caf_case
    free = export.with_columns(commentaire=pl.lit("rien", dtype=pl.String))
    assert scan_frame(free, df, "caf")["ok"]
    for value in (df["prenom1"][0], df["adresse"][1], df["nom_naissance"][2]):
        planted = free.with_columns(
            commentaire=pl.when(pl.int_range(pl.len()) == 5).then(pl.lit(value))
            .otherwise(pl.col("commentaire")))
        assert ("commentaire", "nom_ou_adresse") in _checks(scan_frame(planted, df, "caf"))


def test_planted_nir_in_token_column_is_caught(caf_case) -> None:
    df, export, _ = caf_case
    nir = df["nir"].drop_nulls()[0]
    planted = export.with_columns(
        tok_nom_dob=pl.when(pl.int_range(pl.len()) == 2).then(pl.lit(nir))
        .otherwise(pl.col("tok_nom_dob")))
    for scan in (scan_frame(planted, df, "caf"), scan_frame(planted, None, "caf")):
        assert ("tok_nom_dob", "format_jeton") in _checks(scan)
        assert nir not in str(scan)


def test_planted_columns_are_caught(caf_case) -> None:
    df, export, _ = caf_case
    planted = export.with_columns(
        date_naissance=pl.lit(dt.date(1985, 5, 17)),
        nir_num=pl.lit(2850561169001, dtype=pl.Int64),
        tok_nir=pl.col("tok_nir").cast(pl.String),  # a text token column (contract 4)
    )
    checks = _checks(scan_frame(planted, df, "caf"))
    assert {("date_naissance", "colonne_date"), ("nir_num", "nir"),
            ("tok_nir", "format_jeton")} <= checks


def test_scan_export_file(tmp_path: Path, caf_case) -> None:
    df, export, _ = caf_case
    path = write_parquet(export.with_columns(role=pl.lit("2850561169001")), tmp_path / "e.parquet",
                         sort_by=["handle"])
    ing = write_parquet(df, tmp_path / "i.parquet", sort_by=["line"], private=True)
    assert not scan_export(path, ing, "caf")["ok"]
    assert not scan_export(path)["ok"]


def test_pseudonymise_writes_nothing_when_scan_fails(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.agency.pseudonymise.core as core

    work = tmp_path / "caf"
    df = ingested("caf", 200, seed=9)
    write_parquet(df, work / "ingested.parquet", sort_by=["line"], private=True)
    # a feature computation gone wrong puts a surname of the extract in a coded column (since
    # contract 3 no territory label leaves, so the fault is planted in the features): refused
    real = core.add_features
    monkeypatch.setattr(core, "add_features", lambda frame, agency, **kw: real(frame, agency, **kw)
                        .with_columns(type_foyer=pl.lit(df["nom_naissance"][0])))
    with pytest.raises(LeakageFound) as err:
        pseudonymise("caf", work, work / "keys", tmp_path / "c.yaml", work / "export", seed=1,
                     materials=Materials(KEY, "x", "test", None, None, True), sign=False)
    assert "type_foyer (hors_domaine" in str(err.value)
    assert "domaine que le contrat d'export déclare" in str(err.value)
    assert df["nom_naissance"][0] not in str(err.value)
    assert not (work / "export").exists()
    assert not (work / "handles.parquet").exists()


def test_rank_attack_recovers_unsalted_not_salted() -> None:
    # 10 names with a steep frequency profile; tokens = the names themselves (worst case)
    names = pl.Series([f"N{i}" for i in range(10) for _ in range(100 - 9 * i)])
    assert rank_attack(names, names) == 1.0
    years = pl.Series([1950 + (k * 7919) % 60 for k in range(names.len())])
    salted = names + years.cast(pl.String)
    assert rank_attack(salted, names) < 0.2


def test_frequency_leakage_salted_below_target_naive_above(caf_case) -> None:
    df, export, handles = caf_case
    truth = handles.select("handle", "line").join(
        df.select("line", pl.col("nom_naissance").alias("nom"), "prenom1"), on="line"
    ).drop("line")
    res = frequency_leakage_frame(export, truth)
    assert res["objectif_sous_1pct"] is True
    for tok in ("tok_nom_commune", "tok_prenom_dob", "tok_phon_dob", "tok_nom_ym"):
        assert res["attaque_rang"][tok]["oracle_global"] < 0.01, tok
    naive = res["controle_naif"]["hmac_non_sale_prenom1"]["oracle_global"]
    assert naive > 0.05
    uni = res["unicite"]["tok_nom_dob"]
    assert uni["part_distincts"] > 0.95 and uni["frequence_max"] < 0.01
    for col, uni in res["unicite"].items():  # version 2: every key near-unique per person
        assert uni.get("frequence_max", 0.0) < 0.01, col


def test_frequency_leakage_file_api(tmp_path: Path, caf_case) -> None:
    df, export, handles = caf_case
    e = write_parquet(export, tmp_path / "e.parquet", sort_by=["handle"])
    h = write_parquet(handles, tmp_path / "h.parquet", sort_by=["line"], private=True)
    i = write_parquet(df, tmp_path / "i.parquet", sort_by=["line"], private=True)
    central = frequency_leakage(e)
    assert "attaque_rang" not in central and "tok_nir" in central["unicite"]
    agency = frequency_leakage(e, handles_file=h, ingested_file=i)
    assert agency["attaque_rang"]["tok_prenom_dob"]["oracle_global"] < 0.01


# --- people named like a code (issue: « Al » blocked every CAF export) ------------------------

SAMPLE_RAW = Path(__file__).resolve().parents[2] / "sample_data" / "raw"
CODE_NAMES = {  # agency -> (given-name column, surname column, [(given name, surname)])
    "caf": ("prenoms", "nom_naissance",
            [("Al", "Rsa"), ("Af", "Couple"), ("Isole", "Paje"), ("Cf", "Aah"), ("Ppa", "Asf"),
             ("Dem", "Cjt"), ("Enf", "Apc"), ("Non", "Oui"), ("Autre", "Monoparent")]),
    "cpam": ("prenom", "nom",
             [("Non", "Gratuite"), ("Assure", "Enfant"), ("Al", "Participation"),
              ("Oui", "Certifie"), ("Absent", "Provisoire"), ("Aucune", "Autre")]),
}


def _code_named_extract(agency: str, dest: Path, households: int = 120) -> Path:
    """A slice of the sample extract (whole households) whose first persons carry code names."""
    from pipeline.agency.ingest.layout import load_layout

    encoding = load_layout(agency).encoding
    text = (SAMPLE_RAW / f"{agency}_extract.csv").read_bytes().decode(encoding)
    raw = pl.read_csv(io.StringIO(text), separator=";", infer_schema=False)
    key = "matricule" if agency == "caf" else "nir_ouvrant_droit"
    keep = raw[key].unique(maintain_order=True).head(households).implode()
    raw = raw.filter(pl.col(key).is_in(keep))
    given, surname, names = CODE_NAMES[agency]
    idx = pl.int_range(pl.len())
    raw = raw.with_columns(
        pl.when(idx < len(names)).then(pl.Series([g for g, _ in names]).extend_constant(
            None, raw.height - len(names))).otherwise(pl.col(given)).alias(given),
        pl.when(idx < len(names)).then(pl.Series([s for _, s in names]).extend_constant(
            None, raw.height - len(names))).otherwise(pl.col(surname)).alias(surname),
    )
    path = dest / f"{agency}_extract.csv"
    path.write_bytes(raw.write_csv(separator=";").encode(encoding))
    return path


@pytest.mark.parametrize("agency", ["caf", "cpam"])
def test_people_named_like_codes_never_block_the_export(tmp_path: Path, agency: str) -> None:
    from pipeline.agency.ingest.api import ingest
    from pipeline.shared.leak_scan import export_domains

    work = tmp_path / agency
    ingest(agency, _code_named_extract(agency, tmp_path), work)
    sample_territory = SAMPLE_RAW.parent / "territory" / "iris_quartiers.csv"
    result = pseudonymise(agency, work, work / "keys", tmp_path / "c.yaml", work / "export",
                          territory=sample_territory if agency == "caf" else None, seed=3,
                          materials=Materials(KEY, "x", "test", None, None, True), sign=False)
    assert result.rows > 0 and result.export_file.exists()
    # the coincidence the old scan tripped on is really there: a name of the extract equals a
    # code of a coded column of the export
    ingested_df = pl.read_parquet(work / "ingested.parquet")
    export = pl.read_parquet(result.export_file)
    names = {n.upper() for n in set(ingested_df["prenom1"].drop_nulls()) | set(
        ingested_df["nom_naissance" if agency == "caf" else "nom"].drop_nulls())}
    codes = set()
    for col in export_domains(agency):
        if col in export.columns and export[col].dtype in (pl.String, pl.List(pl.String)):
            series = export[col].explode() if export[col].dtype == pl.List else export[col]
            codes |= {c.upper() for c in series.drop_nulls()}  # contract 3: lower-case codes
    assert names & codes, "fixture lost its code-like names"
    # the central re-scan (pipeline/central/run.py: no extract, the agency's domains) agrees
    assert scan_frame(export, agency=agency)["ok"]
    # control: the same extract with a name planted in a free column is still refused
    planted = export.with_columns(commentaire=pl.lit(sorted(names & codes)[0]))
    scan = scan_frame(planted, ingested_df, agency)
    assert ("commentaire", "nom_ou_adresse") in _checks(scan)
