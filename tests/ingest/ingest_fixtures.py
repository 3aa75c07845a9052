"""Small synthetic extracts for the ingest tests (only invented people)."""

from __future__ import annotations

from pathlib import Path

from stdnum.fr import nir as stdnir

CAF_HEADER = (
    "matricule;role;nir;nom_naissance;nom_usage;prenoms;date_naissance;sexe;telephone;adresse;"
    "code_postal;code_commune;code_iris;situation_familiale;residence_alternee;ressources_12m;"
    "prestations;date_extraction"
)
CPAM_HEADER = (
    "nir_beneficiaire;nir_ouvrant_droit;rang_gemellaire;qualite;nom;prenom;date_naissance;sexe;"
    "adresse;code_postal;code_commune;css;css_debut;css_fin;medecin_traitant;date_extraction"
)


def full_nir(body13: str) -> str:
    """A 15-character NIR whose key python-stdnum computes (the oracle)."""
    return body13 + stdnir.calc_check_digits(body13 + "00")


NIR_ANNE = full_nir("2850561169012")  # woman, 1985-05, Orne
NIR_PAUL = full_nir("1820261169034")  # man, 1982-02
NIR_CORSE = full_nir("17603" + "2A" + "004123")  # man, born 1976-03 in Corse-du-Sud
NIR_PROV = full_nir("7900199123456")  # provisional number


def caf_rows() -> list[str]:
    return [
        f"0000001;DEM;{NIR_ANNE};Lefèvre épouse Martin;;Anne-Sophie, Marie;1985-05-12;2;"
        "06 12 34 56 78;3 allée des Tilleuls;61100;61169;611690101;COUPLE;;12 345,50;AF,AL;"
        "2025-06-30",
        f"0000001;CJT;{NIR_PAUL};Martin;;Paul;1982-02-03;1;;3 allée des Tilleuls;61100;61169;"
        "611690101;COUPLE;;12 345,50;AF,AL;2025-06-30",
        "0000001;ENF;;MARTIN;;Léa;2015-07-01;2;;;61100;61169;611690101;COUPLE;O;12 345,50;"
        "AF,AL;2025-06-30",
        f"0000002;DEM;{NIR_CORSE};D'Artagnan;;Jean;1976-03-09;1;;;61100;61169;611690102;ISOLE;;"
        "0;rsa;2025-06-30",
        f"0000003;DEM;{NIR_PROV};Nguyen;;Van;1990-00-00;1;;;61100;61169;611690102;ISOLE;;800;"
        "RSA,AAH;2025-06-30",
    ]


def write_caf(path: Path, rows: list[str] | None = None, header: str = CAF_HEADER) -> Path:
    lines = [header, *(caf_rows() if rows is None else rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cpam_rows() -> list[str]:
    return [
        f"{NIR_ANNE};{NIR_ANNE};1;ASSURE;Lefèvre;Anne-Sophie;12/05/1985;2;3 allée des Tilleuls;"
        "61100;61169;GRATUITE;01/01/2025;31/12/2025;O;30/06/2025",
        f";{NIR_ANNE};1;ENFANT;Martin;Léa;01/07/2015;2;3 allée des Tilleuls;61100;61169;NON;;;N;"
        "30/06/2025",
        f"{NIR_PAUL};{NIR_PAUL};1;ASSURE;Martin;Paul;03/02/1982;1;;61100;61169;NON;;;O;30/06/2025",
        f"{NIR_CORSE};{NIR_CORSE};1;ASSURE;Œuvray;Jérôme;09/03/1976;1;rue de la Forêt;61100;"
        "61169;NON;;;N;30/06/2025",
    ]


def write_cpam(path: Path, rows: list[str] | None = None, header: str = CPAM_HEADER,
               encoding: str = "cp1252") -> Path:
    lines = [header, *(cpam_rows() if rows is None else rows)]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path
