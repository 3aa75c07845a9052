"""RFC 4180 records and file-level refusals: one clear French message, nothing written."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from ingest_fixtures import CAF_HEADER, CPAM_HEADER, caf_rows, cpam_rows, write_caf, write_cpam

from pipeline.agency.ingest import ingest
from pipeline.common.errors import InputError


def _refused(agency: str, src: Path, out: Path, match: str) -> InputError:
    with pytest.raises(InputError, match=match) as exc:
        ingest(agency, src, out)
    assert not out.exists(), "a refused file must leave nothing behind"
    assert str(src) in str(exc.value)
    return exc.value


def _lines(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")), delimiter=";"))


def test_quoted_line_breaks_keep_physical_line_numbers(tmp_path):
    rows = caf_rows()
    fields = rows[0].split(";")
    fields[9] = '"3 allée des Tilleuls\nBâtiment ""Les Pins""\nEscalier B"'  # lines 2-4
    rows[0] = ";".join(fields)
    rows.insert(2, "0000009;ZZZ;;Durand;;Paul;1970-01-01;1;;;;61169;611690101;ISOLE;;1;;"
                   "2025-06-30")  # a bad row on physical line 6
    out = tmp_path / "out"
    result = ingest("caf", write_caf(tmp_path / "caf.csv", rows), out)
    df = pl.read_parquet(result.ingested)
    assert df["line"].to_list()[:2] == [2, 5]  # the second record starts on physical line 5
    assert df["adresse"][0] == '3 allée des Tilleuls Bâtiment "Les Pins" Escalier B'
    rejected = [r for r in _lines(result.rejections) if r["action"] == "ligne rejetée"]
    assert {r["line"] for r in rejected} == {"6"}
    assert result.rows_read == 6
    stats = json.loads(result.stats.read_text(encoding="utf-8"))
    assert stats["lignes_physiques"] == 9  # header + 8 lines (one record spans three)


def test_cpam_crlf_quoted_line_break(tmp_path):
    rows = cpam_rows()
    rows[3] = rows[3].replace("rue de la Forêt", '"rue de la Forêt\r\nLieu-dit « Œillet »"')
    rows.append(rows[2].replace("ASSURE", "CONJOINT"))  # physical line 7 after the 2-line record
    result = ingest("cpam", write_cpam(tmp_path / "cpam.csv", rows), tmp_path / "out")
    df = pl.read_parquet(result.ingested)
    assert df.filter(pl.col("line") == 5)["adresse"].to_list() == [
        "rue de la Forêt Lieu-dit « Œillet »"]
    assert {r["line"] for r in _lines(result.rejections)} == {"7"}


def test_header_only_and_blank_only_are_refused(tmp_path):
    for i, text in enumerate([CAF_HEADER + "\n", CAF_HEADER + "\n\n \n", CAF_HEADER]):
        src = tmp_path / f"caf{i}.csv"
        src.write_text(text, encoding="utf-8")
        err = _refused("caf", src, tmp_path / "out", "aucune ligne de données")
        assert err.line == 1


def test_dates_of_the_other_agency_are_refused(tmp_path):
    import re

    rows = [re.sub(r"(\d{4})-(\d\d)-(\d\d)", r"\3/\2/\1", r) for r in caf_rows()]
    err = _refused("caf", write_caf(tmp_path / "caf.csv", rows), tmp_path / "out",
                   "AAAA-MM-JJ")
    assert err.line == 2 and err.column == "date_extraction"
    rows = [re.sub(r"(\d\d)/(\d\d)/(\d{4})", r"\3-\2-\1", r) for r in cpam_rows()]
    _refused("cpam", write_cpam(tmp_path / "cpam.csv", rows), tmp_path / "out", "JJ/MM/AAAA")


def test_several_extraction_dates_are_refused(tmp_path):
    rows = caf_rows()
    rows[3] = rows[3].replace("2025-06-30", "2025-05-31")
    err = _refused("caf", write_caf(tmp_path / "caf.csv", rows), tmp_path / "out",
                   "plusieurs dates d'extraction")
    assert err.line == 5


@pytest.mark.parametrize("byte", [b"\x00", b"\x07", b"\x1b"])
def test_control_bytes_are_refused_without_echo(tmp_path, byte):
    src = write_caf(tmp_path / "caf.csv")
    data = src.read_bytes()
    at = data.index(b"Paul")
    src.write_bytes(data[:at] + b"Pa" + byte + b"ul" + data[at + 4:])
    err = _refused("caf", src, tmp_path / "out", "octet de contrôle")
    line_start = data.rfind(b"\n", 0, at) + 1
    assert err.line == 3 and f"position {at - line_start + 3}" in str(err)
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "ingest", "--agency", "caf", "--input", str(src),
         "--out", str(tmp_path / "cli")], capture_output=True, check=False)
    assert proc.returncode != 0
    assert byte not in proc.stdout + proc.stderr and b"Paul" not in proc.stderr
    assert b"Traceback" not in proc.stderr and b"ligne 3" in proc.stderr


def test_utf16_export_is_refused(tmp_path):
    src = tmp_path / "caf.csv"
    src.write_bytes((CAF_HEADER + "\n" + "\n".join(caf_rows()) + "\n").encode("utf-16"))
    _refused("caf", src, tmp_path / "out", "UTF-16")


def test_truncated_last_line(tmp_path):
    src = write_caf(tmp_path / "caf.csv")
    data = src.read_bytes()
    src.write_bytes(data[: len(data) - 40])
    err = _refused("caf", src, tmp_path / "out", "tronqué")
    assert err.line == 6
    # A complete last line without a final line break is fine (Excel often omits it).
    src.write_bytes(data.rstrip(b"\n"))
    assert ingest("caf", src, tmp_path / "ok").rows_accepted == 5
    # A quote opened and never closed at the end of the file is a truncation too.
    rows = caf_rows()
    rows[4] = rows[4].replace("Nguyen", '"Nguyen')
    _refused("caf", write_caf(tmp_path / "q.csv", rows), tmp_path / "out", "tronqué")


def test_quote_spanning_too_many_lines(tmp_path):
    rows = caf_rows()
    rows[0] = rows[0].replace("Lefèvre", '"Lefèvre')
    rows[3] = rows[3].replace("D'Artagnan", 'D"Artagnan')
    rows = rows[:1] + [rows[1]] * 12 + rows[2:]
    err = _refused("caf", write_caf(tmp_path / "caf.csv", rows), tmp_path / "out",
                   "plus de 10 lignes")
    assert err.line == 2


@pytest.mark.parametrize("size", [501, 1_000_000, 10_000_000])
def test_field_over_the_size_limit(tmp_path, size):
    rows = caf_rows()
    fields = rows[1].split(";")
    fields[9] = "A" * size
    rows[1] = ";".join(fields)
    err = _refused("caf", write_caf(tmp_path / "caf.csv", rows), tmp_path / "out",
                   "limite de 500")
    assert (err.line, err.column) == (3, "adresse")
    assert "A" * 20 not in str(err)


def test_size_limit_is_declared_in_the_layout(tmp_path):
    import yaml

    from pipeline.agency.ingest.layout import default_layout_path

    spec = yaml.safe_load(default_layout_path("caf").read_text(encoding="utf-8"))
    spec["columns"]["adresse"]["max_length"] = 10
    layout = tmp_path / "l.yaml"
    layout.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    with pytest.raises(InputError, match="limite de 10") as exc:
        ingest("caf", write_caf(tmp_path / "caf.csv"), tmp_path / "out", layout)
    assert exc.value.line == 2  # "3 allée des Tilleuls" has 20 characters


def test_header_case_accents_and_spaces(tmp_path):
    header = CAF_HEADER.upper().replace("PRENOMS", "Prénoms").replace("DATE_NAISSANCE",
                                                                      "Date naissance")
    result = ingest("caf", write_caf(tmp_path / "caf.csv", header=header), tmp_path / "out")
    assert result.rows_accepted == 5
    header = CPAM_HEADER.replace("prenom;", "Prénom ;")
    assert ingest("cpam", write_cpam(tmp_path / "c.csv", header=header),
                  tmp_path / "o2").rows_accepted == 4
