"""Re-identification: own handles only, opposition and contacts honoured, reproducible lists."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import time
import zipfile
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from reid_builders import R, write_agency

from pipeline.agency.reidentify import reidentify
from pipeline.agency.reidentify.agency_data import months_before
from pipeline.common.errors import PipelineError, RefusalError

RUN = {"run_date": "2026-11-22", "convention_id": "demo-test"}


def _run(paths: dict[str, Path], out: Path, **kw) -> object:
    return reidentify(
        "caf",
        paths["targets"],
        paths["work"],
        out,
        opposition=paths["opposition"],
        contacts=paths["contacts"],
        run_info=RUN,
        **kw,
    )


def _csv(path: Path) -> pl.DataFrame:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    return pl.read_csv(io.BytesIO(raw[3:]), separator=";", infer_schema=False)


def test_lists_per_quartier_with_holds(tmp_path: Path) -> None:
    paths = write_agency(tmp_path)
    out = tmp_path / "listes"
    res = _run(paths, out)
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "a_verifier.csv",
        "a_verifier.xlsx",
        "agregats_quartiers.csv",
        "cible_Q1.csv",
        "cible_Q1.xlsx",
        "listes.parquet",
        "reidentify_stats.json",
    ]
    q1 = _csv(out / "cible_Q1.csv")
    # fe contacted 2 months ago is held back; fb priority 1 first, then ff (ABADIE) before...
    assert q1["Nom"].to_list() == ["ABADIE", "BERNARD", "MARTIN"]
    # contract 3: the centre sent the child's handle for fa and no quartier; the CAF placed the
    # household in Q1 (handles table) and lists its allocataire
    assert q1["Prénom"].to_list()[-1] == "LEA"
    agg = _csv(out / "agregats_quartiers.csv")
    assert agg.columns == ["tableau", "regle", "Q1", "Q2", "Total"]
    assert (out / "agregats_quartiers.csv").stat().st_mode & 0o077 == 0
    assert q1["Priorité"].to_list() == ["1", "1", "2"]
    assert "Téléphone" in q1.columns and "Motif" in q1.columns
    assert "Avertissement" not in q1.columns
    av = _csv(out / "a_verifier.csv")
    assert av["Nom"].to_list() == ["ROUX"]
    stats = json.loads((out / "reidentify_stats.json").read_text(encoding="utf-8"))
    assert stats["retenues"] == {
        "opposition_table_handles": 1,
        "opposition_liste": 1,
        "contact_recent": 1,
    }
    assert stats["cibles_autre_organisme"] == 1
    assert stats["listees"] == {"cible": 3, "a_verifier": 1}
    assert res.stats["par_quartier"] == {"Q1": 3}
    for p in out.iterdir():
        if p.suffix in (".xlsx", ".csv", ".parquet"):
            assert p.stat().st_mode & 0o077 == 0, p.name


def test_without_lists_nobody_is_held(tmp_path: Path) -> None:
    paths = write_agency(tmp_path, opposed_handle=None)
    res = reidentify("caf", paths["targets"], paths["work"], tmp_path / "o", run_info=RUN)
    assert res.stats["retenues"] == {
        "opposition_table_handles": 0,
        "opposition_liste": 0,
        "contact_recent": 0,
    }
    assert res.stats["listees"]["cible"] == 6


def test_refuses_a_handle_it_did_not_issue(tmp_path: Path) -> None:
    paths = write_agency(tmp_path)
    t = pl.read_parquet(paths["targets"])
    forged = t.head(1).with_columns(pl.lit("f" * 32).alias("handle"))
    pl.concat([t, forged]).write_parquet(paths["targets"])
    out = tmp_path / "listes"
    with pytest.raises(RefusalError, match="non émis"):
        _run(paths, out)
    assert not out.exists()


def test_refuses_a_foyer_that_does_not_match_its_handle(tmp_path: Path) -> None:
    paths = write_agency(tmp_path)
    t = pl.read_parquet(paths["targets"]).with_columns(
        pl.when(pl.col("agence") == "caf")
        .then(pl.col("foyer").str.reverse())
        .otherwise(pl.col("foyer"))
        .alias("foyer")
    )
    t.write_parquet(paths["targets"])
    with pytest.raises(RefusalError, match="foyer"):
        _run(paths, tmp_path / "listes")


def test_refuses_a_readable_handles_table(tmp_path: Path) -> None:
    paths = write_agency(tmp_path)
    os.chmod(paths["work"] / "handles.parquet", 0o644)
    with pytest.raises(PipelineError, match="permissions"):
        _run(paths, tmp_path / "listes")


def test_xlsx_is_byte_identical_across_reruns(tmp_path: Path, monkeypatch) -> None:
    paths = write_agency(tmp_path)
    _run(paths, tmp_path / "a")
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 7 * 3600 + 3)
    _run(paths, tmp_path / "b")
    for name in ("cible_Q1.xlsx", "a_verifier.xlsx", "cible_Q1.csv", "reidentify_stats.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    with zipfile.ZipFile(tmp_path / "a" / "cible_Q1.xlsx") as z:
        assert {i.date_time for i in z.infolist()} == {(2026, 11, 22, 0, 0, 0)}


def test_xlsx_header_block_and_warning(tmp_path: Path) -> None:
    paths = write_agency(tmp_path, warning="AUCUN BARÈME CSS CONFIRMÉ pour la date de référence")
    out = tmp_path / "listes"
    _run(paths, out)
    ws = openpyxl.load_workbook(out / "cible_Q1.xlsx")["Liste"]
    header = [ws.cell(row=i, column=1).value or "" for i in range(1, 8)]
    assert "quartier Q1" in header[0]
    assert header[1].startswith("ATTENTION : AUCUN BARÈME")
    assert any("22/11/2026" in h and "demo-test" in h for h in header)
    assert any("30/09/2025" in h and "barème CSS du 01/04/2025 au 31/03/2026" in h for h in header)
    assert "Avertissement" in _csv(out / "cible_Q1.csv").columns


def test_convention_limits_contact_fields(tmp_path: Path) -> None:
    paths = write_agency(tmp_path)
    conv = Path(__file__).resolve().parents[2] / "conventions" / "demo-flers.yaml"
    if not conv.exists():
        pytest.skip("demo convention not present")
    res = reidentify(
        "caf",
        paths["targets"],
        paths["work"],
        tmp_path / "o",
        convention=conv,
        run_info={"run_date": "2026-11-22"},
    )
    assert res.stats["convention"] == "demo-flers"
    assert res.stats["champs_contact"] == [
        "matricule",
        "role",
        "nom",
        "prenom",
        "telephone",
        "adresse",
        "code_postal",
        "code_commune",
    ]


def test_months_before_clamps() -> None:
    assert months_before(dt.date(2025, 8, 31), 6) == dt.date(2025, 2, 28)
    assert months_before(R, 6) == dt.date(2025, 3, 30)
    assert months_before(dt.date(2025, 3, 15), 6) == dt.date(2024, 9, 15)


def test_cpam_side_opposition_and_contacts_by_nir(tmp_path: Path) -> None:
    """CPAM: opposition list `nir` and contact history `nir;date_contact` go through ingested."""
    work = tmp_path / "cpam"
    work.mkdir()
    people = [
        ("pa", "ga", 2, "1750861169003"),
        ("pb", "gb", 3, "2800161169004"),
        ("pc", "gc", 4, "2950361169006"),
    ]
    handles = pl.DataFrame(
        {
            "handle": [p[0].ljust(32, "0") for p in people],
            "foyer": [p[1].ljust(32, "0") for p in people],
            "line": [p[2] for p in people],
            "qualite": ["ASSURE"] * 3,
            "nom": ["PETIT", "DURAND", "LEROY"],
            "prenom": ["JULES", "ANNE", "EMMA"],
            "adresse": ["1 RUE DU TEST"] * 3,
            "code_postal": ["61100"] * 3,
            "code_commune": ["61169"] * 3,
            "opposition": [False] * 3,
        }
    )
    handles.write_parquet(work / "handles.parquet")
    pl.DataFrame({
        "line": [p[2] for p in people], "nir": [p[3] for p in people],
        # the CSS dates stay at the CPAM (only a status left): the list gets them from here
        "css_debut": [dt.date(2025, 1, 15)] * 3, "css_fin": [dt.date(2026, 1, 14)] * 3,
    }).write_parquet(work / "ingested.parquet")
    for f in ("handles.parquet", "ingested.parquet"):
        os.chmod(work / f, 0o600)
    targets = pl.DataFrame(
        {
            "agence": ["cpam"] * 3,
            "foyer": handles["foyer"],
            "handle": handles["handle"],
            "quartier": ["NON_LOCALISE"] * 3,
            "liste": ["cible"] * 3,
            "regles": [["css_gratuite_sans_minima"]] * 3,
            "motifs": [["m"]] * 3,
            "actions": [["bilan de droits RSA / prime d'activité"]] * 3,
            "priorite": [2] * 3,
            "date_reference": [R] * 3,
        }
    )
    targets.write_parquet(tmp_path / "targets.parquet")
    (tmp_path / "opp.csv").write_text("nir\n1750861169003 42\n", encoding="utf-8")
    (tmp_path / "contacts.csv").write_text(
        "nir;date_contact\n2800161169004;15/09/2025\n", encoding="utf-8"
    )
    res = reidentify(
        "cpam",
        tmp_path / "targets.parquet",
        work,
        tmp_path / "out",
        opposition=tmp_path / "opp.csv",
        contacts=tmp_path / "contacts.csv",
        run_info=RUN,
    )
    assert res.stats["retenues"] == {
        "opposition_table_handles": 0,
        "opposition_liste": 1,
        "contact_recent": 1,
    }
    listed = _csv(tmp_path / "out" / "cible_NON_LOCALISE.csv")
    assert listed["Nom"].to_list() == ["LEROY"] and "Qualité" in listed.columns
    # the CPAM extract has no phone: the column is there, empty, with how to reach them instead
    assert listed["Téléphone"].to_list() == [None]
    assert listed["Comment joindre"].to_list() == ["visite à domicile / courrier à l'adresse"]
    assert listed["Quartier"].to_list() == ["non localisé"]
    assert listed["Début de CSS"].to_list() == ["15/01/2025"]
    assert listed["Fin de CSS"].to_list() == ["14/01/2026"]
    assert not (tmp_path / "out" / "a_verifier.csv").exists()
