"""End-to-end tests of `ingest()` on small hand-written extracts written in tmp_path."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import stat
import sys
from pathlib import Path

import polars as pl
import pytest
from ingest_fixtures import (
    CAF_HEADER,
    CPAM_HEADER,
    NIR_ANNE,
    NIR_CORSE,
    NIR_PAUL,
    caf_rows,
    cpam_rows,
    write_caf,
    write_cpam,
)

from pipeline.agency.ingest import ingest
from pipeline.agency.ingest.schema import output_schema
from pipeline.common.errors import InputError


def _rejections(path: Path) -> list[dict[str, str]]:
    text = path.read_text(encoding="utf-8-sig")
    return list(csv.DictReader(io.StringIO(text), delimiter=";"))


def _stats(out: Path) -> dict:
    return json.loads((out / "ingest_stats.json").read_text(encoding="utf-8"))


def _assert_books_balance(result, out: Path) -> None:
    """Each record is in exactly one of: ingested, rejected, quarantined."""
    df = pl.read_parquet(result.ingested)
    rejected = {int(r["line"]) for r in _rejections(result.rejections)
                if r["action"] == "ligne rejetée"}
    held = {int(r["line"]) for r in _rejections(result.quarantine)}
    accepted = set(df["line"].to_list())
    assert not rejected & accepted and not held & accepted and not held & rejected
    assert len(accepted) + len(rejected) + len(held) == result.rows_read
    assert accepted | rejected | held == set(range(2, result.rows_read + 2))
    stats = _stats(out)
    assert stats["lignes_acceptees"] + stats["lignes_rejetees"] + \
        stats["lignes_en_quarantaine"] == stats["lignes_lues"]
    assert stats["lignes_rejetees"] == len(rejected) == result.rows_rejected
    assert stats["quarantaine"]["lignes"] == len(held) == result.rows_quarantined


def test_caf_clean_file(tmp_path):
    out = tmp_path / "out"
    result = ingest("caf", write_caf(tmp_path / "caf.csv"), out)
    df = pl.read_parquet(result.ingested)
    assert dict(df.schema) == output_schema("caf")
    assert result.rows_read == 5 and result.rows_accepted == 5
    first = df.row(0, named=True)
    assert first["nom_naissance"] == "LEFEVRE" and first["nom_usage"] == "MARTIN"
    assert first["prenoms"] == "ANNE SOPHIE MARIE" and first["prenom1"] == "ANNE SOPHIE"
    assert first["nir"] == NIR_ANNE[:13] and first["nir_statut"] == "certifie"
    assert first["ressources_12m"] == pytest.approx(12345.5)
    assert df["prestations"].to_list()[0] == ["AF", "AL"]
    assert first["telephone"] == "0612345678"
    assert first["date_naissance"] == dt.date(1985, 5, 12)
    assert df["nom_usage"][1] is None  # CJT: no usage name
    assert df["residence_alternee"].to_list() == [None, None, True, None, None]
    assert df["nom_naissance"][3] == "D ARTAGNAN"
    assert df["nir"][3][5:7] == "2A"
    assert df["prestations"].to_list()[3] == ["RSA"]  # lower case accepted
    partial = df.row(4, named=True)
    assert partial["nir_statut"] == "provisoire"
    assert partial["date_naissance"] is None and partial["naiss_annee"] == 1990
    assert partial["naiss_mois"] is None
    _assert_books_balance(result, out)
    assert _stats(out)["nir_statut"] == {"absent": 1, "certifie": 3, "provisoire": 1}


def test_outputs_are_owner_only_and_deterministic(tmp_path):
    src = write_caf(tmp_path / "caf.csv", [*caf_rows(), "9999999;XXX;;A;;B;1980-01-01"])
    a = ingest("caf", src, tmp_path / "a")
    b = ingest("caf", src, tmp_path / "b")
    for name in ("ingested.parquet", "rejections.csv", "avertissements.csv",
                 "ingest_stats.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        mode = stat.S_IMODE((tmp_path / "a" / name).stat().st_mode)
        assert mode & 0o077 == 0, name
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    assert a.rows_rejected == b.rows_rejected == 1


def test_row_and_value_problems_are_accounted_for(tmp_path):
    rows = [
        *caf_rows(),
        ";DEM;;Durand;;Paul;1970-01-01;1;;;;61169;611690101;ISOLE;;1000;;2025-06-30",  # 7
        "0000004;ZZZ;;Durand;;Paul;1970-01-01;1;;;;61169;611690101;ISOLE;;1000;;2025-06-30",
        "0000005;DEM;;Durand;;Paul;1970-02-31;1;;;;61169;611690101;ISOLE;;1000;;2025-06-30",
        "0000006;DEM;;Durand;;Paul;1970-01-01;1;;;;61169;611690101;ISOLE;;douze;;2025-06-30",
        "0000007;DEM;123456789012345;X;;Inconnu;1970-01-01;9;;;;61169;611690101;SEUL;;1;PPA,ZZ;"
        "2025-06-30",  # 11: only ignored values
        "0000008;DEM;;Durand",  # 12: short line
        "",  # 13: blank line
        f"0000009;DEM;{NIR_PAUL};Durand;;Paul;1982-02-03;2;;;;61169;611690101;ISOLE;;1;;"
        "2025-06-30",
    ]
    out = tmp_path / "out"
    result = ingest("caf", write_caf(tmp_path / "caf.csv", rows), out)
    rej = _rejections(result.rejections)
    by_line = {}
    for r in rej:
        by_line.setdefault(int(r["line"]), []).append((r["column"], r["reason"], r["action"]))
    assert by_line[7] == [("matricule", "valeur obligatoire absente", "ligne rejetée")]
    assert by_line[8][0][0] == "role" and by_line[8][0][2] == "ligne rejetée"
    assert by_line[9] == [("date_naissance", "date impossible (jour ou mois hors calendrier)",
                           "valeur ignorée")]
    assert by_line[10] == [("ressources_12m", "montant illisible", "ligne rejetée")]
    assert {c for c, _, a in by_line[11] if a == "valeur ignorée"} == {
        "nir", "nom_naissance", "prenoms", "sexe", "situation_familiale", "prestations"}
    assert by_line[12][0][0] == "" and "nombre de champs" in by_line[12][0][1]
    assert by_line[13] == [("", "ligne vide", "ligne rejetée")]
    assert 14 not in by_line
    warnings = _rejections(result.warnings)
    assert [(w["line"], w["reason"]) for w in warnings] == [
        ("6", "date partielle (jour ou mois inconnu, 00)"), ("14", "sexe incohérent avec le NIR")]
    assert result.rows_rejected == 5  # lines 7, 8, 10, 12, 13
    _assert_books_balance(result, out)
    df = pl.read_parquet(result.ingested)
    kept = df.filter(pl.col("line") == 11).row(0, named=True)
    assert kept["nir"] is None and kept["nir_statut"] == "invalide"
    assert kept["nom_naissance"] is None and kept["prenoms"] is None and kept["sexe"] is None
    assert df.filter(pl.col("line") == 11)["prestations"].to_list() == [["PPA"]]
    stats = _stats(out)
    assert sum(m["nombre"] for m in stats["motifs"] if m["action"] == "valeur ignorée") == \
        stats["valeurs_ignorees"] == sum(1 for r in rej if r["action"] == "valeur ignorée")


def test_no_raw_value_in_rejections_or_stats(tmp_path):
    secret_nir = "285056116901299"  # wrong key
    rows = [
        f"0000001;DEM;{secret_nir};Zorglub;;Zébulon;2031-02-30;7;06 99 99 99 99;1 rue Zorg;6110;"
        "6116;61169;ISOLE;peut-être;abc;RSAZ;2025-06-30",
        "0000002;ZORGROLE;;Zorglub;;Zébulon;1980-01-01;1;;;;;;;;1;;2025-06-30",
    ]
    out = tmp_path / "out"
    result = ingest("caf", write_caf(tmp_path / "caf.csv", rows), out)
    text = result.rejections.read_text(encoding="utf-8") + (out / "ingest_stats.json").read_text(
        encoding="utf-8") + result.warnings.read_text(encoding="utf-8")
    assert result.rows_rejected == 2
    for raw in (secret_nir, secret_nir[:13], "ZORGLUB", "Zorglub", "ZEBULON", "2031", "06 99",
                "rue Zorg", "ZORGROLE", "RSAZ", "abc", "peut-être"):
        assert raw not in text


def test_cpam_windows_1252_with_accents(tmp_path):
    out = tmp_path / "out"
    result = ingest("cpam", write_cpam(tmp_path / "cpam.csv"), out)
    df = pl.read_parquet(result.ingested)
    assert dict(df.schema) == output_schema("cpam")
    assert df["nom"].to_list() == ["LEFEVRE", "MARTIN", "MARTIN", "OEUVRAY"]
    assert df["prenom1"].to_list() == ["ANNE SOPHIE", "LEA", "PAUL", "JEROME"]
    assert df["adresse"][3] == "rue de la Forêt"  # decoded, not mojibake
    assert df["nir_ouvrant_droit"][1] == NIR_ANNE[:13] and df["nir_statut"][1] == "absent"
    assert df["css"].to_list() == ["GRATUITE", "NON", "NON", "NON"]
    assert df["css_debut"][0] == dt.date(2025, 1, 1) and df["css_fin"][0] == dt.date(2025, 12, 31)
    assert df["medecin_traitant"].to_list() == [True, False, True, False]
    assert df["rang_gemellaire"].to_list() == [1, 1, 1, 1]
    assert df["date_extraction"].unique().to_list() == [dt.date(2025, 6, 30)]
    _assert_books_balance(result, out)


def test_cpam_rows(tmp_path):
    rows = [
        *cpam_rows(),
        f";{NIR_ANNE};2;ENFANT;Martin;Léo;01/07/2015;1;;61100;61169;NON;;;N;30/06/2025",
        f"{NIR_PAUL};{NIR_PAUL};1;CONJOINT;Martin;Paul;03/02/1982;1;;61100;61169;NON;;;O;"
        "30/06/2025",
        f"{NIR_PAUL};{NIR_PAUL};1;ASSURE;Martin;Paul;03/02/2026;1;;61100;61169;GRATUITE;;;O;"
        "30/06/2025",
        f"{NIR_CORSE};{NIR_CORSE};1;ASSURE;Œuvray;Jérôme;09/03/2026;1;rue de la Forêt;61100;"
        "61169;NON;;;N;30/06/2025",
    ]
    out = tmp_path / "out"
    result = ingest("cpam", write_cpam(tmp_path / "cpam.csv", rows), out)
    rej = {(int(r["line"]), r["column"], r["action"]) for r in _rejections(result.rejections)}
    assert (7, "qualite", "ligne rejetée") in rej
    assert (9, "date_naissance", "valeur ignorée") in rej  # born after the extraction date
    held = _rejections(result.quarantine)
    # Line 7 (Paul, rejected) leaves his group incomplete: lines 4 and 8 are held back.
    assert {(int(h["line"]), h["regle"]) for h in held} >= {(4, "membre_rejete"),
                                                           (8, "membre_rejete")}
    df = pl.read_parquet(result.ingested)
    assert df.filter(pl.col("line") == 6)["rang_gemellaire"].to_list() == [2]
    assert df.filter(pl.col("line") == 9)["date_naissance"].to_list() == [None]
    assert not set(df["line"].to_list()) & {4, 7, 8}
    _assert_books_balance(result, out)


def test_utf8_file_given_as_cpam_is_refused(tmp_path):
    path = write_cpam(tmp_path / "cpam.csv", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        ingest("cpam", path, tmp_path / "out")
    assert "UTF-8" in str(exc.value) and exc.value.line == 2
    assert not (tmp_path / "out" / "ingested.parquet").exists()


def test_invalid_utf8_byte_names_line_and_column(tmp_path):
    path = write_caf(tmp_path / "caf.csv")
    data = path.read_bytes().replace("Léa".encode(), b"L\xe9a")  # Windows-1252 byte in UTF-8
    path.write_bytes(data)
    with pytest.raises(InputError) as exc:
        ingest("caf", path, tmp_path / "out")
    assert exc.value.line == 4 and exc.value.column == "prenoms"
    assert "L\xe9a" not in str(exc.value)


def test_byte_undefined_in_windows_1252(tmp_path):
    path = write_cpam(tmp_path / "cpam.csv")
    path.write_bytes(path.read_bytes().replace(b"Paul", b"Pa\x81l"))  # 0x81: no cp1252 char
    with pytest.raises(InputError) as exc:
        ingest("cpam", path, tmp_path / "out")
    assert exc.value.line == 4 and exc.value.column == "prenom"
    assert "Windows-1252" in str(exc.value)


def test_missing_column_names_the_column(tmp_path):
    header = CAF_HEADER.replace("role;", "")
    rows = [";".join(r.split(";")[:1] + r.split(";")[2:]) for r in caf_rows()]
    with pytest.raises(InputError) as exc:
        ingest("caf", write_caf(tmp_path / "caf.csv", rows, header=header), tmp_path / "out")
    assert exc.value.column == "role" and exc.value.line == 1
    assert "role" in str(exc.value)


def test_optional_column_may_be_missing(tmp_path):
    header = CAF_HEADER.replace(";telephone", "")
    rows = [";".join(r.split(";")[:8] + r.split(";")[9:]) for r in caf_rows()]
    out = tmp_path / "out"
    result = ingest("caf", write_caf(tmp_path / "caf.csv", rows, header=header), out)
    assert result.rows_accepted == 5
    assert pl.read_parquet(result.ingested)["telephone"].null_count() == 5
    assert _stats(out)["colonnes_optionnelles_absentes"] == [
        "telephone", "aah_taux_plein", "aide_logement_mensuelle", "statut_occupation"]


def test_wrong_separator_is_a_file_error(tmp_path):
    header = CAF_HEADER.replace(";", ",")
    rows = [r.replace(";", ",") for r in caf_rows()]
    with pytest.raises(InputError) as exc:
        ingest("caf", write_caf(tmp_path / "caf.csv", rows, header=header), tmp_path / "out")
    assert "séparateur" in str(exc.value)


def test_mostly_ragged_file_is_refused_with_first_line(tmp_path):
    rows = caf_rows()[:1] + ["0000002;DEM;;Durand"] * 3
    with pytest.raises(InputError) as exc:
        ingest("caf", write_caf(tmp_path / "caf.csv", rows), tmp_path / "out")
    assert exc.value.line == 3


def test_quoted_field_with_separator(tmp_path):
    rows = caf_rows()
    fields = rows[1].split(";")
    fields[9] = '"3 allée des Tilleuls; bât. B"'
    rows[1] = ";".join(fields)
    result = ingest("caf", write_caf(tmp_path / "caf.csv", rows), tmp_path / "out")
    assert result.rows_accepted == 5
    assert pl.read_parquet(result.ingested)["adresse"][1] == "3 allée des Tilleuls; bât. B"


def test_unclosed_quote_is_a_file_error(tmp_path):
    rows = caf_rows()
    rows[2] = rows[2].replace("Léa", '"Léa')
    with pytest.raises(InputError) as exc:
        ingest("caf", write_caf(tmp_path / "caf.csv", rows), tmp_path / "out")
    assert exc.value.line == 4


def test_trailing_blank_lines_are_not_rows(tmp_path):
    src = tmp_path / "caf.csv"
    src.write_text(CAF_HEADER + "\n" + "\n".join(caf_rows()) + "\n\n \n", encoding="utf-8")
    out = tmp_path / "out"
    result = ingest("caf", src, out)
    assert (result.rows_read, result.rows_accepted, result.rows_rejected) == (5, 5, 0)
    assert _stats(out)["lignes_vides_finales"] == 2
    src.write_text(CAF_HEADER + "\n\n", encoding="utf-8")  # header only: refused, nothing written
    with pytest.raises(InputError, match="aucune ligne de données"):
        ingest("caf", src, tmp_path / "empty")
    assert not (tmp_path / "empty").exists()


def test_missing_file_and_empty_file(tmp_path):
    with pytest.raises(InputError, match="introuvable"):
        ingest("caf", tmp_path / "absent.csv", tmp_path / "out")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="vide"):
        ingest("caf", tmp_path / "empty.csv", tmp_path / "out")


def test_other_territory_layout(tmp_path):
    """A territory with its own column names and formats supplies a layout file."""
    import yaml

    from pipeline.agency.ingest.layout import default_layout_path

    spec = yaml.safe_load(default_layout_path("cpam").read_text(encoding="utf-8"))
    spec["encoding"] = "utf-8"
    spec["separator"] = "|"
    spec["date_format"] = "%Y%m%d"
    spec["columns"]["nom"]["source"] = "NOM_PATRONYMIQUE"
    spec["columns"]["qualite"]["aliases"] = {"AS": "ASSURE", "EN": "ENFANT"}
    layout = tmp_path / "territoire.yaml"
    layout.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    header = CPAM_HEADER.replace(";nom;", ";NOM_PATRONYMIQUE;").replace(";", "|")
    row = (f"{NIR_PAUL}|{NIR_PAUL}|1|AS|Martin|Paul|19820203|1||61100|61169|NON|||O|20250630")
    src = tmp_path / "cpam.csv"
    src.write_text(header + "\n" + row + "\n", encoding="utf-8")
    result = ingest("cpam", src, tmp_path / "out", layout)
    r = pl.read_parquet(result.ingested).row(0, named=True)
    assert (r["nom"], r["qualite"], r["date_naissance"]) == ("MARTIN", "ASSURE",
                                                            dt.date(1982, 2, 3))
    assert _stats(tmp_path / "out")["disposition"] == "territoire.yaml"


def test_layout_that_breaks_the_contract_is_refused(tmp_path):
    import yaml

    from pipeline.agency.ingest.layout import default_layout_path

    spec = yaml.safe_load(default_layout_path("caf").read_text(encoding="utf-8"))
    spec["columns"]["ressources_12m"]["type"] = "text"
    layout = tmp_path / "bad.yaml"
    layout.write_text(yaml.safe_dump(spec), encoding="utf-8")
    with pytest.raises(InputError) as exc:
        ingest("caf", write_caf(tmp_path / "caf.csv"), tmp_path / "out", layout)
    assert exc.value.column == "ressources_12m"
    spec = yaml.safe_load(default_layout_path("caf").read_text(encoding="utf-8"))
    spec["columns"]["role"]["allowed"] = ["DEM", "CHEF"]
    layout.write_text(yaml.safe_dump(spec), encoding="utf-8")
    with pytest.raises(InputError, match="CHEF"):
        ingest("caf", write_caf(tmp_path / "caf.csv"), tmp_path / "out", layout)
    with pytest.raises(InputError, match="agence"):
        ingest("cpam", write_cpam(tmp_path / "cpam.csv"), tmp_path / "out",
               default_layout_path("caf"))


def test_cli_success_and_readable_failure(tmp_path, monkeypatch, capsys):
    from pipeline import cli

    src = write_caf(tmp_path / "caf.csv")
    argv = ["nonrecours", "ingest", "--agency", "caf", "--out", str(tmp_path / "o")]
    monkeypatch.setattr(sys, "argv", [*argv, "--input", str(src)])
    with pytest.raises(SystemExit) as ok:
        cli.main()
    assert ok.value.code in (0, None)
    assert "5 lignes acceptées" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", [*argv, "--input", str(tmp_path / "nope.csv"), "--remplacer"])
    with pytest.raises(SystemExit) as bad:
        cli.main()
    assert bad.value.code == 2
    err = capsys.readouterr().err
    assert "introuvable" in err and "Traceback" not in err
