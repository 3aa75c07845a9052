"""Field-work vocabulary (fieldwork.yaml) and the household facts the lists show.

The outcome choices, roles, priorities, age brackets and the legal notice live in one YAML
file; this module reads it once. The make-up columns (adults, children, age bracket of the
person to contact, resources, CSS end) are computed at the agency from its own ingested table,
in columns, and the territory table gives quartier and commune names.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import polars as pl
import yaml

from pipeline.common.errors import InputError


@dataclass(frozen=True)
class Outcome:
    code: str
    libelle: str
    joint: bool
    explication: str


@dataclass(frozen=True)
class Fieldwork:
    outcomes: tuple[Outcome, ...]
    child_roles: tuple[str, ...]
    roles: dict[str, str]
    priorities: dict[int, str]
    age_brackets: tuple[tuple[int, str], ...]
    no_phone_hint: str
    phone_hint: str
    unlisted_quartiers: dict[str, str]
    legal_notice: str


@cache
def fieldwork() -> Fieldwork:
    """The parsed fieldwork.yaml (cached: it is package data)."""
    path = Path(str(resources.files("pipeline.agency.reidentify") / "fieldwork.yaml"))
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return Fieldwork(
        outcomes=tuple(Outcome(**o) for o in data["resultats"]),
        child_roles=tuple(data["roles_enfants"]),
        roles=dict(data["roles"]),
        priorities={int(k): str(v) for k, v in data["priorites"].items()},
        age_brackets=tuple((int(lo), str(label)) for lo, label in data["tranches_age"]),
        no_phone_hint=str(data["sans_telephone"]),
        phone_hint=str(data["avec_telephone"]),
        unlisted_quartiers=dict(data["quartiers_hors_table"]),
        legal_notice=" ".join(str(data["mention_legale"]).split()),
    )


def age_bracket(age: pl.Expr) -> pl.Expr:
    """Label of the bracket holding `age` (years); null when the age is unknown."""
    expr: pl.Expr = pl.lit(None, dtype=pl.String)
    for lower, label in fieldwork().age_brackets:
        expr = pl.when(age >= lower).then(pl.lit(label)).otherwise(expr)
    return expr


def household_facts(
    handles: pl.DataFrame, ingested: pl.DataFrame, reference: dt.date
) -> pl.DataFrame:
    """Per foyer: nb_adultes, nb_enfants; per person (line): tranche_age, ressources_12m, CSS dates.

    Returns one row per line of the handles table; the caller joins it on the contact's line.
    """
    role = next((c for c in ("role", "qualite") if c in ingested.columns), None)
    is_child = pl.col(role).is_in(list(fieldwork().child_roles)) if role else pl.lit(False)
    people = handles.select("line", "foyer").join(ingested, on="line", how="left")
    counts = people.group_by("foyer").agg(
        (~is_child).sum().cast(pl.Int64).alias("nb_adultes"),
        is_child.sum().cast(pl.Int64).alias("nb_enfants"),
    )
    ref = reference
    if "date_naissance" in people.columns:
        born = pl.col("date_naissance")
        age = (
            pl.lit(ref.year)
            - born.dt.year()
            - ((born.dt.month() * 100 + born.dt.day()) > ref.month * 100 + ref.day).cast(pl.Int32)
        )
    else:
        age = pl.lit(None, dtype=pl.Int32)
    typed = [
        pl.col(c) if c in people.columns else pl.lit(None, dtype=t).alias(c)
        for c, t in (("ressources_12m", pl.Float64), ("css_debut", pl.Date), ("css_fin", pl.Date))
    ]
    return (
        people.select("line", "foyer", age_bracket(age).alias("tranche_age"), *typed)
        .join(counts, on="foyer", how="left")
        .drop("foyer")
    )


def territory_names(path: Path | None) -> tuple[dict[str, str], dict[str, str]]:
    """(quartier code -> name, commune code -> name) from iris_quartiers.csv; empty without it."""
    extra = fieldwork().unlisted_quartiers
    if path is None:
        return dict(extra), {}
    path = Path(path)
    try:
        table = pl.read_csv(path, separator=";", infer_schema=False, encoding="utf8")
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(path, f"table du territoire illisible ({type(exc).__name__})") from exc
    table = table.rename({c: c.strip().lstrip("\ufeff") for c in table.columns})
    for col in ("quartier", "nom_quartier", "code_commune", "nom_commune"):
        if col not in table.columns:
            raise InputError(path, "colonne obligatoire absente", line=1, column=col)
    # sorted so that a code given two names always resolves to the same one (the last)
    quartiers = dict(table.select("quartier", "nom_quartier").unique().sort("*").iter_rows())
    communes = dict(table.select("code_commune", "nom_commune").unique().sort("*").iter_rows())
    return {**extra, **quartiers}, communes
