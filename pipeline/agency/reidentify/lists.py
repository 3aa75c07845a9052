"""Shape the CCAS lists: one typed row per household, French headers, CSV twin.

One job: turn the re-identified frame into the display frame both files share (the XLSX
layout lives in sheets.py). A household's rights are ranked: the main right (highest priority)
with its reason and action, then the titles of the other rights met, so overlapping reasons are
not repeated. Counts, amounts and dates stay typed (numbers, dates), never text in a sentence.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from pipeline.agency.reidentify.fieldwork import fieldwork
from pipeline.common.french import euros

# Headers the feedback step reads back from a filled list (one declaration, two readers).
REFERENCE = "Référence"
OUTCOME = "Résultat du contact"
CONTACT_DATE = "Date du contact"
COMMENT = "Commentaire"
QUARTIER = "Quartier"
ADDRESS = "Adresse"
COMMUNE = "Commune"
NAME_HEADERS = {"nom": "Nom", "prenom": "Prénom", "role": "Rôle", "qualite": "Qualité"}
TYPED_HEADERS = {
    "ressources_12m": "Ressources CAF 12 mois (hors forfait logement)",
    "ressources_css": "Ressources CSS 12 mois (avec forfait logement)",
    "plafond_gratuite": "Plafond CSS gratuite",
    "plafond_participation": "Plafond CSS avec participation",
    "css_debut": "Début de CSS",
    "css_fin": "Fin de CSS",
}
WARNING = "Avertissement"


@dataclass(frozen=True)
class ListHeader:
    """What the header block of every list says."""

    title: str
    run_date: dt.date
    convention_id: str
    reference_date: dt.date | None
    css_table: str
    warning: str | None


def css_table_text(desc: dict[str, Any]) -> str:
    """One line describing the CSS table used (period, free / contribution ceilings)."""
    metro = desc["plafonds_metropole"]
    g, p = metro["gratuite"], metro["participation"]
    cells = " / ".join(euros(g[k]) for k in ("1", "2", "3", "4"))
    cells_p = " / ".join(euros(p[k]) for k in ("1", "2", "3", "4"))
    status = "confirmé" if desc["confirme"] else "NON CONFIRMÉ"
    period = desc.get("periode_fr", desc["periode"])
    return (
        f"barème CSS {period} ({status}) — plafonds annuels 1 à 4 personnes, "
        f"CSS gratuite : {cells} (+{euros(g['extra'])} par personne en plus) ; "
        f"avec participation : {cells_p} (+{euros(p['extra'])}) ; outre-mer : +11,3 %"
    )


def _named(code: str, names: dict[str, str]) -> pl.Expr:
    return pl.col(code).replace_strict(names, default=pl.col(code), return_dtype=pl.String)


def to_display(
    df: pl.DataFrame,
    contact_fields: Sequence[str],
    rule_titles: dict[str, str],
    names: tuple[dict[str, str], dict[str, str]],
    *,
    typed: Sequence[str],
    joiner: str,
) -> pl.DataFrame:
    """The list's columns in reading order (typed), from the listed frame.

    `df` holds the target columns, the contact fields, and the household facts of
    fieldwork.household_facts; `typed` names the amount/date columns this agency shows.
    """
    fw = fieldwork()
    quartiers, communes = names
    has = set(contact_fields)

    def field(name: str) -> pl.Expr:
        return pl.col(name) if name in has else pl.lit(None, dtype=pl.String)

    phone = field("telephone").cast(pl.String).str.strip_chars()
    cols: list[pl.Expr] = [
        pl.col("priorite").cast(pl.Int64).alias("Priorité"),
        pl.col("regles")
        .list.first()
        .replace_strict(rule_titles, default=pl.col("regles").list.first())
        .alias("Droit principal"),
        pl.col("motifs").list.first().alias("Motif"),
        pl.col("actions").list.first().alias("Action proposée"),
        pl.col("regles")
        .list.slice(1)
        .list.eval(pl.element().replace(rule_titles))
        .list.join(joiner)
        .alias("Autres droits repérés"),
    ]
    cols += [pl.col(c).cast(pl.String).alias(h) for c, h in NAME_HEADERS.items() if c in has]
    cols += [
        pl.col("nb_adultes").alias("Nb adultes"),
        pl.col("nb_enfants").alias("Nb enfants"),
        pl.col("tranche_age").alias("Tranche d'âge"),
        phone.alias("Téléphone"),
        pl.when(phone.is_null() | (phone == ""))
        .then(pl.lit(fw.no_phone_hint))
        .otherwise(pl.lit(fw.phone_hint))
        .alias("Comment joindre"),
        field("adresse").alias(ADDRESS),
    ]
    if "code_postal" in has:
        cols.append(pl.col("code_postal").cast(pl.String).alias("Code postal"))
    cols.append(
        (
            _named("code_commune", communes) if "code_commune" in has else pl.lit(None, pl.String)
        ).alias(COMMUNE)
    )
    cols.append(_named("quartier", quartiers).alias(QUARTIER))
    if "matricule" in has:
        cols.append(pl.col("matricule").cast(pl.String).alias("N° allocataire"))
    cols += [pl.col(c).alias(TYPED_HEADERS[c]) for c in typed]
    cols += [
        pl.lit(None, dtype=pl.String).alias(OUTCOME),
        pl.lit(None, dtype=pl.Date).alias(CONTACT_DATE),
        pl.lit(None, dtype=pl.String).alias(COMMENT),
        pl.col("foyer").alias(REFERENCE),
    ]
    out = df.select(cols)
    if df["avertissement"].drop_nulls().len():
        out = out.with_columns(df["avertissement"].alias(WARNING))
    return out


def csv_bytes(display: pl.DataFrame) -> bytes:
    """`;`-separated, UTF-8 with BOM, French decimals and dates (what Excel FR opens as is)."""
    buf = io.BytesIO()
    buf.write(b"\xef\xbb\xbf")
    display.write_csv(buf, separator=";", decimal_comma=True, date_format="%d/%m/%Y")
    return buf.getvalue()
