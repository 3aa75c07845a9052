"""The raw files follow the default layouts (docs/EXTRACTS.md): columns, encodings, separators,
date and amount formats."""

from __future__ import annotations

import re

from synth_read import caf, cpam, malformed_lines

from pipeline.synth.writer import CAF_COLUMNS, CPAM_COLUMNS

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")
FR = re.compile(r"^\d{2}/\d{2}/\d{4}$")
AMOUNT = re.compile(r"^\d+,\d{2}$")
PRESTATIONS = {"RSA", "RSAM", "PPA", "ASF", "AAH", "AL", "AF", "CF", "PAJE"}


def test_headers_in_brief_order(dataset):
    out, _ = dataset
    assert caf(out)[0] == CAF_COLUMNS
    assert cpam(out)[0] == CPAM_COLUMNS
    assert CAF_COLUMNS[:3] == ["matricule", "role", "nir"] and CAF_COLUMNS[-1] == "date_extraction"
    assert CPAM_COLUMNS[:4] == ["nir_beneficiaire", "nir_ouvrant_droit", "rang_gemellaire",
                                "qualite"]


def test_encodings_and_line_endings(dataset):
    out, _ = dataset
    caf_bytes = (out / "raw" / "caf_extract.csv").read_bytes()
    cpam_bytes = (out / "raw" / "cpam_extract.csv").read_bytes()
    caf_bytes.decode("utf-8")
    assert not caf_bytes.startswith(b"\xef\xbb\xbf") and b"\r\n" not in caf_bytes
    assert "é".encode() in caf_bytes  # accents really present, in UTF-8
    # Windows-1252: accented letters are single bytes, so the file is not valid UTF-8
    assert b"\xc9" in cpam_bytes or b"\xcb" in cpam_bytes  # É or Ë
    try:
        cpam_bytes.decode("utf-8")
        raise AssertionError("CPAM extract must not be UTF-8")
    except UnicodeDecodeError:
        pass
    assert cpam_bytes.count(b"\r\n") == cpam_bytes.count(b"\n")


def test_caf_values(dataset):
    out, meta = dataset
    rows = caf(out)
    bad = malformed_lines(out, "raw/caf_extract.csv")
    col = {c: i for i, c in enumerate(CAF_COLUMNS)}
    checked = 0
    for line, r in enumerate(rows[1:], start=2):
        if line in bad:
            continue
        assert len(r) == len(CAF_COLUMNS), line
        assert re.fullmatch(r"\d{7}", r[col["matricule"]])
        assert r[col["role"]] in {"DEM", "CJT", "ENF", "APC"}
        assert AMOUNT.match(r[col["ressources_12m"]]), line
        assert ISO.match(r[col["date_naissance"]]), line
        assert r[col["date_extraction"]] == meta["reference_date"]
        assert r[col["situation_familiale"]] in {"ISOLE", "COUPLE"}
        assert r[col["sexe"]] in {"1", "2"}
        alt = r[col["residence_alternee"]]
        assert alt in ({"O", "N"} if r[col["role"]] == "ENF" else {""})
        p = r[col["prestations"]]
        assert p == "" or set(p.split(",")) <= PRESTATIONS
        assert r[col["code_iris"]][:5] == r[col["code_commune"]]
        checked += 1
    assert checked > 3000


def test_cpam_values(dataset):
    out, meta = dataset
    rows = cpam(out)
    bad = malformed_lines(out, "raw/cpam_extract.csv")
    col = {c: i for i, c in enumerate(CPAM_COLUMNS)}
    y, m, d = meta["reference_date"].split("-")
    for line, r in enumerate(rows[1:], start=2):
        if line in bad:
            continue
        assert len(r) == len(CPAM_COLUMNS), line
        assert FR.match(r[col["date_naissance"]]), line
        assert r[col["date_extraction"]] == f"{d}/{m}/{y}"
        assert r[col["qualite"]] in {"ASSURE", "ENFANT"}
        css = r[col["css"]]
        assert css in {"NON", "GRATUITE", "PARTICIPATION"}
        if css == "NON":
            assert r[col["css_debut"]] == r[col["css_fin"]] == ""
        else:
            assert FR.match(r[col["css_debut"]]) and FR.match(r[col["css_fin"]])
        assert r[col["medecin_traitant"]] in {"O", "N"}
        if r[col["qualite"]] == "ASSURE":
            assert r[col["nir_ouvrant_droit"]] == r[col["nir_beneficiaire"]]


def test_malformed_rows_are_really_malformed(dataset):
    out, meta = dataset
    assert sum(meta["counts"]["malformed_caf"].values()) >= 1
    rows = caf(out)
    col = {c: i for i, c in enumerate(CAF_COLUMNS)}
    for line in malformed_lines(out, "raw/caf_extract.csv"):
        r = rows[line - 1]
        broken = (len(r) < len(CAF_COLUMNS) or r[col["role"]] == "CONJ"
                  or r[col["ressources_12m"]] == "NC"
                  or r[col["date_naissance"]].endswith("-02-31"))
        assert broken, line


def test_every_name_fits_windows_1252():
    """The CPAM file is Windows-1252: a name outside it would crash a large run."""
    from pipeline.synth import names

    p = names.pools()
    for s in [*p.last, *p.last_abroad, *p.given, *(g.upper() for g in p.given)]:
        assert s.encode("cp1252").decode("cp1252") == s
