"""Agency-side fixtures for re-identification tests (synthetic people only)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import polars as pl

R = dt.date(2025, 9, 30)

# foyer -> (quartier, liste, priorite, regles, members [(handle, line, role, nom, prenom, nir)])
HOUSEHOLDS = {
    "fa": (
        "Q1",
        "cible",
        2,
        ["sous_plafond_sans_css"],
        [
            ("ha1", 2, "DEM", "MARTIN", "LEA", "2850761169001"),
            ("ha2", 3, "ENF", "MARTIN", "NOE", None),
        ],
    ),
    "fb": (
        "Q1",
        "cible",
        1,
        ["monoparent_sous_plafond_sans_css", "sous_plafond_sans_css"],
        [("hb1", 4, "DEM", "BERNARD", "ZOE", "2900561169002")],
    ),
    "fc": (
        "Q2",
        "cible",
        1,
        ["rsa_sans_css"],
        [("hc1", 5, "DEM", "PETIT", "JULES", "1750861169003")],
    ),
    "fd": (
        "Q2",
        "cible",
        1,
        ["rsa_sans_css"],
        [
            ("hd1", 6, "DEM", "DURAND", "ANNE", "2800161169004"),
            ("hd2", 7, "CJT", "DURAND", "PAUL", "1790261169005"),
        ],
    ),
    "fe": (
        "Q1",
        "cible",
        1,
        ["rsa_sans_css"],
        [("he1", 8, "DEM", "LEROY", "EMMA", "2950361169006")],
    ),
    "ff": (
        "Q1",
        "cible",
        1,
        ["rsa_sans_css"],
        [("hf1", 9, "DEM", "ABADIE", "LUC", "1880461169007")],
    ),
    "fg": (
        "Q2",
        "a_verifier",
        4,
        ["a_verifier"],
        [("hg1", 10, "DEM", "ROUX", "IRIS", "2910961169008")],
    ),
}
MATRICULES = {f: f"10000{i:02d}" for i, f in enumerate(HOUSEHOLDS, start=1)}
RESOURCES = {f: 1000.0 * i + 0.5 for i, f in enumerate(HOUSEHOLDS, start=1)}
# house numbers per foyer: the tour sheet must sort by street, then number (2 before 10)
ADDRESSES = {
    "fa": "10 RUE DES LILAS",
    "fb": "2 RUE DES LILAS",
    "fc": "5 AVENUE FOCH",
    "fd": "1 RUE DES LILAS",
    "fe": "3 AVENUE FOCH",
    "ff": "7 BIS ALLEE DES PINS",
    "fg": "4 RUE DES LILAS",
}
NO_PHONE = {"ff"}
TERRITORY = (
    "code_iris;code_commune;nom_commune;quartier;nom_quartier;qpv\n"
    "611690101;61169;Flers;Q1;Saint-Michel;1\n"
    "611690102;61169;Flers;Q2;Les Provinces;1\n"
)


def _pad(x: str) -> str:
    return x.ljust(32, "0")


def write_agency(
    tmp: Path, *, opposed_handle: str | None = "hd2", warning: str | None = None,
    full_extract: bool = False,
) -> dict[str, Path]:
    """workdir (handles + ingested, 0600), targets.parquet, opposition.csv, contacts.csv,
    iris_quartiers.csv (territory names). `full_extract`: the ingested table carries every
    column the agency's ceiling computation reads (foyer fa receives housing aid)."""
    work = tmp / "caf"
    work.mkdir(parents=True, exist_ok=True)
    rows, targets, ingested = [], [], []
    for foyer, (quartier, liste, prio, regles, members) in HOUSEHOLDS.items():
        for handle, line, role, nom, prenom, nir in members:
            rows.append(
                {
                    "handle": _pad(handle),
                    "foyer": _pad(foyer),
                    "line": line,
                    "matricule": MATRICULES[foyer],
                    "role": role,
                    "nom": nom,
                    "prenom": prenom,
                    "telephone": None if foyer in NO_PHONE else "0600000000",
                    "adresse": ADDRESSES[foyer],
                    "code_postal": "61100",
                    "code_commune": "61169",
                    "opposition": handle == opposed_handle,
                    # kept by pseudonymisation (contract 3: the centre has no quartier)
                    "quartier": quartier,
                }
            )
            ingested.append(
                {
                    "line": line,
                    "nir": nir,
                    "role": role,
                    # DEM/CJT born in 1990 (35 at R), children in 2015 (10 at R)
                    "date_naissance": dt.date(2015 if role == "ENF" else 1990, 6, 1),
                    "ressources_12m": RESOURCES[foyer],
                    **({
                        "matricule": MATRICULES[foyer], "sexe": 1, "nir_statut": "certifie",
                        "date_extraction": R, "residence_alternee": False,
                        "code_commune": "61169", "situation_familiale": "ISOLE",
                        "prestations": ["AL"] if foyer == "fa" else [],
                    } if full_extract else {}),
                }
            )
        targets.append(
            {
                "agence": "caf",
                "foyer": _pad(foyer),
                # the centre cannot place nor pick the contact: any member, NON_LOCALISE
                "handle": _pad(members[-1][0]),
                "quartier": "NON_LOCALISE",
                "liste": liste,
                "regles": regles,
                "motifs": [f"motif {r}" for r in regles],
                "actions": ["proposer une demande de CSS gratuite"] * len(regles),
                "priorite": prio,
                "date_reference": R,
                "avertissement": warning,
            }
        )
    targets.append(
        {
            "agence": "cpam",
            "foyer": _pad("gz"),
            "handle": _pad("pz"),
            "quartier": "NON_LOCALISE",
            "liste": "cible",
            "regles": ["css_gratuite_sans_minima"],
            "motifs": ["m"],
            "actions": ["bilan de droits RSA / prime d'activité"],
            "priorite": 2,
            "date_reference": R,
            "avertissement": warning,
        }
    )
    handles = work / "handles.parquet"
    pl.DataFrame(rows).write_parquet(handles)
    os.chmod(handles, 0o600)
    ing = work / "ingested.parquet"
    schema = {
        "line": pl.Int64,
        "nir": pl.String,
        "role": pl.String,
        "date_naissance": pl.Date,
        "ressources_12m": pl.Float64,
    }
    if full_extract:
        schema |= {"matricule": pl.String, "sexe": pl.Int8, "nir_statut": pl.String,
                   "date_extraction": pl.Date, "residence_alternee": pl.Boolean,
                   "code_commune": pl.String, "situation_familiale": pl.String,
                   "prestations": pl.List(pl.String)}
    pl.DataFrame(ingested, schema=schema).write_parquet(ing)
    os.chmod(ing, 0o600)
    tpath = tmp / "targets.parquet"
    pl.DataFrame(targets, schema_overrides={"priorite": pl.Int32}).write_parquet(tpath)
    opp = tmp / "opposition.csv"
    opp.write_text("matricule;nir\n;175086116900342\n", encoding="utf-8")  # foyer fc's DEM
    contacts = tmp / "contacts.csv"
    contacts.write_text(
        "matricule;date_contact\n"
        f"{MATRICULES['fe']};2025-07-30\n"  # 2 months before R: held back
        f"{MATRICULES['ff']};2025-01-30\n",  # 8 months before R: listed again
        encoding="utf-8",
    )
    territory = tmp / "iris_quartiers.csv"
    territory.write_text(TERRITORY, encoding="utf-8")
    return {
        "work": work,
        "targets": tpath,
        "opposition": opp,
        "contacts": contacts,
        "territory": territory,
    }


def write_lists(tmp: Path, run_info: dict | None = None) -> Path:
    """The CAF lists of `write_agency` without opposition nor contact history, territory names
    shown: what a CCAS worker opens (returns the lists folder)."""
    from pipeline.agency.reidentify import reidentify

    paths = write_agency(tmp, opposed_handle=None)
    out = tmp / "listes"
    reidentify("caf", paths["targets"], paths["work"], out, territory=paths["territory"],
               run_info=run_info or {"run_date": "2026-11-22"})
    return out
