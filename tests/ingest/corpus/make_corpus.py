"""Write the adversarial corpus (run once by hand: `python tests/ingest/corpus/make_corpus.py`).

Each file imitates something agencies really send (Excel re-saves, other encodings, other
separators, quoted line breaks, truncated transfers, inconsistent households...). Its expected
outcome is written by hand in expected.csv, from what a data officer should get, and checked by
tests/ingest/test_ingest_corpus.py. Only invented people; NIR keys computed by python-stdnum.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ingest_fixtures import (  # noqa: E402
    CAF_HEADER,
    CPAM_HEADER,
    NIR_ANNE,
    NIR_CORSE,
    NIR_PAUL,
    NIR_PROV,
    full_nir,
)

NIR_ZOE = full_nir("2900161169045")
CAF = [
    f"0000001;DEM;{NIR_ANNE};Lefèvre épouse Martin;;Anne-Sophie, Marie;1985-05-12;2;"
    "06 12 34 56 78;3 allée des Tilleuls;61100;61169;611690101;COUPLE;;12 345,50;AF,AL;2025-06-30",
    f"0000001;CJT;{NIR_PAUL};Martin;;Paul;1982-02-03;1;;3 allée des Tilleuls;61100;61169;"
    "611690101;COUPLE;;12 345,50;AF,AL;2025-06-30",
    "0000001;ENF;;MARTIN;;Léa;2015-07-01;2;;;61100;61169;611690101;COUPLE;O;12 345,50;AF,AL;"
    "2025-06-30",
    f"0000002;DEM;{NIR_CORSE};D'Artagnan;;Jean;1976-03-09;1;;;61100;61169;611690102;ISOLE;;0;RSA;"
    "2025-06-30",
    f"0000003;DEM;{NIR_PROV};Nguyen;;Van;1990-03-01;1;;;61100;61169;611690102;ISOLE;;800;RSA,AAH;"
    "2025-06-30",
]
CPAM = [
    f"{NIR_ANNE};{NIR_ANNE};1;ASSURE;Lefèvre;Anne-Sophie;12/05/1985;2;3 allée des Tilleuls;61100;"
    "61169;GRATUITE;01/01/2025;31/12/2025;O;30/06/2025",
    f";{NIR_ANNE};1;ENFANT;Martin;Léa;01/07/2015;2;3 allée des Tilleuls;61100;61169;GRATUITE;"
    "01/01/2025;31/12/2025;N;30/06/2025",
    f"{NIR_PAUL};{NIR_PAUL};1;ASSURE;Martin;Paul;03/02/1982;1;;61100;61169;NON;;;O;30/06/2025",
    f"{NIR_CORSE};{NIR_CORSE};1;ASSURE;Œuvray;Jérôme;09/03/1976;1;rue de la Forêt;61100;61169;NON;"
    ";;N;30/06/2025",
    f"{NIR_ZOE};{NIR_ZOE};1;ASSURE;Zoé;Lefort;01/01/1990;2;;61100;61169;NON;;;N;30/06/2025",
]


def field(row: str, i: int, value: str) -> str:
    parts = row.split(";")
    parts[i] = value
    return ";".join(parts)


def drop(row: str, i: int) -> str:
    parts = row.split(";")
    del parts[i]
    return ";".join(parts)


def caf(header: str = CAF_HEADER, rows: list[str] | None = None, eol: str = "\n",
        enc: str = "utf-8", final: bool = True) -> bytes:
    text = eol.join([header, *(CAF if rows is None else rows)]) + (eol if final else "")
    return text.encode(enc)


def cpam(header: str = CPAM_HEADER, rows: list[str] | None = None, eol: str = "\r\n",
         enc: str = "cp1252", final: bool = True) -> bytes:
    text = eol.join([header, *(CPAM if rows is None else rows)]) + (eol if final else "")
    return text.encode(enc)


def iso_to_fr(row: str) -> str:
    return re.sub(r"(\d{4})-(\d\d)-(\d\d)", r"\3/\2/\1", row)


def fr_to_iso(row: str) -> str:
    return re.sub(r"(\d\d)/(\d\d)/(\d{4})", r"\3-\2-\1", row)


def caf_dossier(m: str, role: str, nom: str, prenoms: str, dob: str, situation: str = "COUPLE",
                ressources: str = "9000", iris: str = "611690103") -> str:
    return ";".join([m, role, "", nom, "", prenoms, dob, "2", "", "", "61100", "61169", iris,
                     situation, "", ressources, "AF", "2025-06-30"])


def cpam_row(od: str, rang: str, qualite: str, nom: str, prenom: str, dob: str,
             css: str = "NON", debut: str = "", fin: str = "", nir: str = "") -> str:
    return ";".join([nir, od, rang, qualite, nom, prenom, dob, "1", "", "61100", "61169", css,
                     debut, fin, "O", "30/06/2025"])


ADDRESS_3_LINES = '"3 allée des Tilleuls\nRésidence ""Les Pins""\nBât. B"'
FILES: dict[str, bytes] = {
    # --- CAF: format variations a spreadsheet or an export tool produces --------------------
    "caf_ok.csv": caf(),
    "caf_bom.csv": b"\xef\xbb\xbf" + caf(),
    "caf_crlf.csv": caf(eol="\r\n"),
    "caf_mixed_eol.csv": caf().replace(b"\n", b"\r\n", 3),
    "caf_no_final_newline.csv": caf(final=False),
    "caf_trailing_blank_lines.csv": caf() + b"\n\n;;\n"[:2] + b"  \n",
    "caf_blank_line_middle.csv": caf(rows=[*CAF[:3], "", *CAF[3:]]),
    "caf_comma_separator.csv": caf(CAF_HEADER.replace(";", ","),
                                   [r.replace(",", ".").replace(";", ",") for r in CAF]),
    "caf_tab_separator.csv": caf(CAF_HEADER.replace(";", "\t"),
                                 [r.replace(";", "\t") for r in CAF]),
    "caf_trailing_separator.csv": caf(CAF_HEADER + ";", [r + ";" for r in CAF]),
    "caf_trailing_separator_rows_only.csv": caf(rows=[r + ";" for r in CAF]),
    "caf_cp1252.csv": caf(enc="cp1252"),
    "caf_latin1.csv": caf(rows=[r.replace("Œ", "OE") for r in CAF], enc="latin-1"),
    "caf_smart_quotes.csv": caf(rows=[CAF[0], CAF[1], CAF[2],
                                      CAF[3].replace("D'Artagnan", "D\u2019Artagnan"), CAF[4]]),
    "caf_nbsp.csv": caf(rows=[r.replace("12 345,50", "12\u00a0345,50").replace(
        "allée des", "allée\u00a0des") for r in CAF]),
    "caf_header_upper.csv": caf(CAF_HEADER.upper()),
    "caf_header_accents.csv": caf(CAF_HEADER.replace("prenoms", "Prénoms").replace(
        "role", "Rôle").replace("date_naissance", "Date Naissance")),
    "caf_header_spaces.csv": caf(CAF_HEADER.replace(";", " ; ")),
    "caf_extra_column.csv": caf(CAF_HEADER + ";commentaire",
                                [r + ";vu au guichet" for r in CAF]),
    "caf_reordered_columns.csv": caf(
        ";".join(reversed(CAF_HEADER.split(";"))),
        [";".join(reversed(r.split(";"))) for r in CAF]),
    "caf_missing_required_column.csv": caf(drop(CAF_HEADER, 2), [drop(r, 2) for r in CAF]),
    "caf_missing_optional_column.csv": caf(drop(CAF_HEADER, 8), [drop(r, 8) for r in CAF]),
    "caf_duplicated_header.csv": caf(CAF_HEADER + ";nom_naissance",
                                     [r + ";X" for r in CAF]),
    "caf_duplicated_header_case.csv": caf(CAF_HEADER + ";PRÉNOMS", [r + ";X" for r in CAF]),
    "caf_quoted_newline.csv": caf(rows=[field(CAF[0], 9, ADDRESS_3_LINES), *CAF[1:]]),
    "caf_quoted_separator.csv": caf(rows=[field(CAF[0], 9, '"3 allée des Tilleuls; bât. B"'),
                                          *CAF[1:]]),
    "caf_quoted_everything.csv": caf('"' + CAF_HEADER.replace(";", '";"') + '"',
                                     ['"' + r.replace(";", '";"') + '"' for r in CAF]),
    "caf_unclosed_quote.csv": caf(rows=[*CAF[:3], CAF[3].replace("Jean", '"Jean'), CAF[4]]),
    "caf_header_only.csv": caf(rows=[]),
    "caf_empty.csv": b"",
    "caf_only_blank_lines.csv": caf(rows=["", "", " "]),
    "caf_dates_cpam_format.csv": caf(rows=[iso_to_fr(r) for r in CAF]),
    "caf_two_extraction_dates.csv": caf(rows=[*CAF[:3], CAF[3].replace("2025-06-30",
                                                                       "2025-05-31"), CAF[4]]),
    "caf_nul_byte.csv": caf().replace(b"Paul", b"Pa\x00l"),
    "caf_escape_byte.csv": caf().replace(b"Van", b"V\x1b[2Jn"),
    "caf_utf16.csv": caf().decode("utf-8").encode("utf-16"),
    "caf_truncated.csv": caf()[:-30],
    "caf_date_00.csv": caf(rows=[*CAF[:4], CAF[4].replace("1990-03-01", "1990-00-00")]),
    "caf_date_impossible.csv": caf(rows=[*CAF[:4], CAF[4].replace("1990-03-01", "1990-02-30")]),
    "caf_date_with_time.csv": caf(rows=[r.replace("1985-05-12", "1985-05-12 00:00:00")
                                        for r in CAF]),
    "caf_names_particles.csv": caf(rows=[
        *CAF[:3],
        field(field(CAF[3], 3, "de La Fontaine-O'Neil"), 5, "Jean-Marie, N'Golo"),
        field(field(CAF[4], 3, "N'Diaye épouse Le Goff"), 5, "Marie-Ève"),
    ]),
    "caf_person_named_al.csv": caf(rows=[
        *CAF[:3], field(field(CAF[3], 3, "Rsa"), 5, "Al"),
        field(field(CAF[4], 3, "Dem"), 5, "Isole"),
    ]),
    "caf_short_row.csv": caf(rows=[*CAF[:4], "0000003;DEM;;Nguyen;;Van;1990-03-01"]),
    "caf_long_row.csv": caf(rows=[*CAF[:4], CAF[4] + ";en trop"]),
    "caf_ressources_dot_decimal.csv": caf(rows=[*CAF[:3], CAF[3],
                                                CAF[4].replace(";800;", ";800.50;")]),
    "caf_role_lowercase.csv": caf(rows=[r.replace(";DEM;", ";dem;") for r in CAF]),
    "caf_corse.csv": caf(rows=[*CAF[:3], CAF[3].replace("61169;611690102", "2A004;2A0040101"),
                               CAF[4]]),
    "caf_long_field.csv": caf(rows=[field(CAF[0], 9, "Résidence " * 60), *CAF[1:]]),
    # --- CAF: inconsistent households ---------------------------------------------------------
    "caf_duplicate_child.csv": caf(rows=[*CAF, CAF[2]]),
    "caf_two_dem.csv": caf(rows=[*CAF, caf_dossier("0000003", "DEM", "Petit", "Lucie",
                                                   "1991-01-01", situation="ISOLE",
                                                   ressources="800", iris="611690102")
                                 .replace(";AF;", ";RSA,AAH;")]),
    "caf_no_dem.csv": caf(rows=[*CAF, caf_dossier("0000004", "CJT", "Petit", "Marc", "1980-01-01"),
                                caf_dossier("0000004", "ENF", "Petit", "Zoé", "2010-01-01")]),
    "caf_isole_with_cjt.csv": caf(rows=[*CAF, caf_dossier("0000004", "DEM", "Petit", "Lucie",
                                                          "1980-01-01", situation="ISOLE"),
                                        caf_dossier("0000004", "CJT", "Petit", "Marc",
                                                    "1979-01-01", situation="ISOLE")]),
    "caf_child_older_than_parent.csv": caf(rows=[
        *CAF, caf_dossier("0000004", "DEM", "Petit", "Lucie", "1990-01-01", situation="ISOLE"),
        caf_dossier("0000004", "ENF", "Petit", "Zoé", "1985-01-01", situation="ISOLE")]),
    "caf_divergent_ressources.csv": caf(rows=[*CAF[:2], CAF[2].replace("12 345,50", "12 000"),
                                              *CAF[3:]]),
    "caf_negative_ressources.csv": caf(rows=[*CAF[:4], CAF[4].replace(";800;", ";-800;")]),
    "caf_iris_outside_commune.csv": caf(rows=[*CAF[:3], CAF[3].replace("611690102",
                                                                       "611700102"), CAF[4]]),
    "caf_dem_rejected.csv": caf(rows=[CAF[0].replace("12 345,50", "NC"), *CAF[1:]]),
    # --- CPAM -----------------------------------------------------------------------------------
    "cpam_ok.csv": cpam(),
    "cpam_lf_only.csv": cpam(eol="\n"),
    "cpam_utf8.csv": cpam(enc="utf-8"),
    "cpam_utf8_bom.csv": b"\xef\xbb\xbf" + cpam(rows=[r.replace("Œ", "OE").replace("é", "e")
                                                      .replace("ô", "o").replace("ê", "e")
                                                      for r in CPAM], enc="utf-8"),
    "cpam_latin1.csv": cpam(rows=[r.replace("Œ", "OE") for r in CPAM], enc="latin-1"),
    "cpam_iso_dates.csv": cpam(rows=[fr_to_iso(r) for r in CPAM]),
    "cpam_css_oui.csv": cpam(rows=[*CPAM[:2], CPAM[2].replace(";NON;;;", ";OUI;01/01/2025;"
                                                              "31/12/2025;"), *CPAM[3:]]),
    "cpam_css_lowercase.csv": cpam(rows=[r.replace("GRATUITE", "gratuite") for r in CPAM]),
    "cpam_css_non_with_dates.csv": cpam(rows=[*CPAM[:2], CPAM[2].replace(
        ";NON;;;", ";NON;01/01/2025;31/12/2025;"), *CPAM[3:]]),
    "cpam_css_without_dates.csv": cpam(rows=[*CPAM[:2], CPAM[2].replace(
        ";NON;;;", ";PARTICIPATION;;;"), *CPAM[3:]]),
    "cpam_css_end_before_start.csv": cpam(rows=[CPAM[0].replace("31/12/2025", "31/12/2024"),
                                                *CPAM[1:]]),
    "cpam_twins_same_rank.csv": cpam(rows=[*CPAM, cpam_row(NIR_PAUL, "1", "ENFANT", "Martin",
                                                           "Tom", "05/05/2020"),
                                           cpam_row(NIR_PAUL, "1", "ENFANT", "Martin", "Théo",
                                                    "05/05/2020")]),
    "cpam_twins_ranked.csv": cpam(rows=[*CPAM, cpam_row(NIR_PAUL, "1", "ENFANT", "Martin", "Tom",
                                                        "05/05/2020"),
                                        cpam_row(NIR_PAUL, "2", "ENFANT", "Martin", "Théo",
                                                 "05/05/2020")]),
    "cpam_duplicate_person.csv": cpam(rows=[*CPAM, CPAM[1]]),
    "cpam_smart_quotes.csv": cpam(rows=[*CPAM[:3], CPAM[3].replace("Œuvray", "O\u2019Uvray"),
                                        CPAM[4]]),
    "cpam_nbsp.csv": cpam(rows=[r.replace("rue de la", "rue\u00a0de la") for r in CPAM]),
    "cpam_quoted_newline.csv": cpam(rows=[*CPAM[:3], CPAM[3].replace(
        "rue de la Forêt", '"rue de la Forêt\r\nLieu-dit « Le Bourg »"'), CPAM[4]]),
    "cpam_qualite_invalid.csv": cpam(rows=[*CPAM[:2], CPAM[2].replace("ASSURE", "CONJOINT"),
                                           *CPAM[3:]]),
    "cpam_undefined_byte.csv": cpam().replace(b"Paul", b"Pa\x81l"),
    "cpam_two_extraction_dates.csv": cpam(rows=[*CPAM[:4], CPAM[4].replace("30/06/2025",
                                                                           "31/05/2025")]),
    "cpam_truncated.csv": cpam()[:-25],
    "cpam_header_only.csv": cpam(rows=[]),
    "cpam_nul_byte.csv": cpam().replace(b"Martin", b"Mar\x00in", 1),
    "cpam_medecin_oui_non.csv": cpam(rows=[r.replace(";O;30", ";OUI;30").replace(";N;30",
                                                                                 ";non;30")
                                           for r in CPAM]),
    "cpam_rang_padded.csv": cpam(rows=[r.replace(";1;", ";01;", 1) for r in CPAM]),
    "cpam_nir_with_spaces.csv": cpam(rows=[CPAM[0].replace(
        NIR_ANNE, " ".join([NIR_ANNE[0], NIR_ANNE[1:3], NIR_ANNE[3:5], NIR_ANNE[5:7],
                            NIR_ANNE[7:10], NIR_ANNE[10:13], NIR_ANNE[13:]]), 1), *CPAM[1:]]),
    "cpam_comma_separator.csv": cpam(CPAM_HEADER.replace(";", ","),
                                     [r.replace(";", ",") for r in CPAM]),
    "cpam_reordered_columns.csv": cpam(";".join(reversed(CPAM_HEADER.split(";"))),
                                       [";".join(reversed(r.split(";"))) for r in CPAM]),
    "cpam_header_accents.csv": cpam(CPAM_HEADER.replace("prenom", "Prénom").replace(
        "qualite", "Qualité").upper()),
    "cpam_short_row.csv": cpam(rows=[*CPAM, f";{NIR_CORSE};1;ENFANT;Œuvray"]),
    "cpam_long_field.csv": cpam(rows=[*CPAM[:3], field(CPAM[3], 4, "Œuvray" * 100), CPAM[4]]),
}


def main() -> None:
    for old in HERE.glob("*.csv"):
        if old.name != "expected.csv":
            old.unlink()
    for name, data in FILES.items():
        (HERE / name).write_bytes(data)
    print(f"{len(FILES)} fichiers écrits dans {HERE}")


if __name__ == "__main__":
    main()
