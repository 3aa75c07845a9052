"""Hand-built contract fixtures for the detection tests (synthetic, tiny, explicit).

The builder speaks in the agencies' terms (ages, resources, benefits, CSS dates); `write` turns
them into exports through the agency-side computation (pipeline/shared/features.py and the
export's opposition rule), so every detection test also runs the features computed at source.
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.shared import css_params
from pipeline.shared.attributes import (
    STRUCTURE,
    export_age_fields,
    export_attributes,
    minimal_opposition,
)
from pipeline.shared.features import caf_features, cpam_features

# What the agencies hold (before the features): the builder's raw schemas.
CAF_RAW = {
    "handle": pl.String, "foyer": pl.String, "opposition": pl.Boolean, "role": pl.String,
    "age": pl.Int16, "quartier": pl.String, "code_commune": pl.String,
    "situation_familiale": pl.String, "residence_alternee": pl.Boolean,
    "ressources_12m": pl.Float64, "prestations": pl.List(pl.String), "date_reference": pl.Date,
}
CAF_RAW_OPTIONAL = {
    "aah_taux_plein": pl.Boolean, "aide_logement_mensuelle": pl.Float64,
    "statut_occupation": pl.String,
}
CPAM_RAW = {
    "handle": pl.String, "foyer": pl.String, "opposition": pl.Boolean, "role": pl.String,
    "age": pl.Int16, "code_commune": pl.String, "css": pl.String, "css_debut": pl.Date,
    "css_fin": pl.Date, "date_reference": pl.Date,
}

R = dt.date(2025, 9, 30)
_counter = itertools.count(1)


def h(prefix: str) -> str:
    """A fresh 32-hex handle (deterministic within a test session order)."""
    return f"{prefix}{next(_counter):0{32 - len(prefix)}x}"


class Builder:
    """Accumulate CAF foyers, CPAM rows and links; write the three central inputs."""

    def __init__(self, reference: dt.date = R) -> None:
        self.r = reference
        self.caf: list[dict[str, Any]] = []
        self.cpam: list[dict[str, Any]] = []
        self.links: list[dict[str, Any]] = []

    def foyer(
        self,
        members: list[tuple[str, int | None] | tuple[str, int | None, bool]],
        *,
        ressources: float | None = 9000.0,
        prestations: tuple[str, ...] = (),
        situation: str = "ISOLE",
        quartier: str = "QN06101M",
        commune: str = "61169",
        css: str | None = None,
        css_debut: dt.date | None = None,
        css_fin: dt.date | None = None,
        linked: str = "adults",
        opposed_member: int | None = None,
        opposed_cpam: bool = False,
        aah_taux_plein: bool | None = None,
        aide_logement_mensuelle: float | None = None,
        statut_occupation: str | None = None,
    ) -> dict[str, Any]:
        """Add one CAF dossier; members are (role, age[, alternating]). Returns its handles.

        linked: 'adults' (DEM/CJT linked to CPAM rows), 'children' (only ENF linked), 'none'.
        The CSS status is put on the DEM's CPAM row (or the first linked member's). The optional
        CAF columns (aah_taux_plein, aide_logement_mensuelle, statut_occupation) are written only
        when some foyer of the builder sets them.
        """
        foyer = h("f")
        cpam_foyer = h("e")
        handles = []
        first_link = True
        for i, m in enumerate(members):
            role, age = m[0], m[1]
            alt = bool(m[2]) if len(m) > 2 else False
            handle = h("c")
            handles.append(handle)
            opposed = opposed_member == i
            self.caf.append(
                {
                    "handle": handle,
                    "foyer": foyer,
                    "opposition": opposed,
                    "role": role,
                    "age": age,
                    "quartier": quartier,
                    "code_commune": commune,
                    "situation_familiale": situation,
                    "residence_alternee": (alt if role == "ENF" else None),
                    "ressources_12m": ressources,
                    "prestations": list(prestations),
                    "date_reference": self.r,
                    "aah_taux_plein": aah_taux_plein,
                    "aide_logement_mensuelle": aide_logement_mensuelle,
                    "statut_occupation": statut_occupation,
                }
            )
            is_adult = role in ("DEM", "CJT")
            if (
                linked == "none"
                or (linked == "adults" and not is_adult)
                or (linked == "children" and is_adult)
            ):
                continue
            p_handle = h("d")
            self.cpam.append(
                {
                    "handle": p_handle,
                    "foyer": cpam_foyer,
                    "opposition": opposed_cpam and first_link,
                    "role": "ASSURE" if is_adult else "ENFANT",
                    "age": age,
                    "code_commune": commune,
                    "css": (css or "NON") if first_link else "NON",
                    "css_debut": css_debut if first_link else None,
                    "css_fin": css_fin if first_link else None,
                    "date_reference": self.r,
                }
            )
            self.links.append(
                {
                    "caf_handle": handle,
                    "cpam_handle": p_handle,
                    "pass": "nir",
                    "match_weight": 20.0,
                    "match_probability": 0.999,
                }
            )
            first_link = False
        return {"foyer": foyer, "handles": handles, "cpam_foyer": cpam_foyer}

    def cpam_only(
        self,
        *,
        css: str = "GRATUITE",
        css_debut: dt.date | None = None,
        css_fin: dt.date | None = None,
        opposed: bool = False,
    ) -> str:
        """A CPAM ASSURE not linked to the CAF."""
        handle = h("d")
        self.cpam.append(
            {
                "handle": handle,
                "foyer": h("e"),
                "opposition": opposed,
                "role": "ASSURE",
                "age": 40,
                "code_commune": "61169",
                "css": css,
                "css_debut": css_debut,
                "css_fin": css_fin,
                "date_reference": self.r,
            }
        )
        return handle

    def caf_rows(self) -> pl.DataFrame:
        """The CAF rows as the agency holds them before the features (rank, CSS household)."""
        frame = pl.DataFrame(self.caf, schema={**CAF_RAW, **CAF_RAW_OPTIONAL})
        unused = [c for c in CAF_RAW_OPTIONAL if frame[c].is_null().all()]
        return export_age_fields(
            frame.drop(unused), group="foyer", seniority=-pl.col("age"), tiebreak="handle",
        ).with_columns(
            pl.lit("certifie").alias("nir_statut"),
            pl.lit(1, dtype=pl.Int8).alias("sexe"),
            pl.lit(None, dtype=pl.Int64).alias("tok_nir"),
        )

    def write(self, folder: Path) -> tuple[Path, Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        caf = caf_features(self.caf_rows(), css_params.select_period(self.r))
        caf = minimal_opposition(
            caf.select(*STRUCTURE, *export_attributes("caf", caf.columns), "tok_nir"), caf["role"])
        cpam = cpam_features(pl.DataFrame(self.cpam, schema=CPAM_RAW))
        cpam = minimal_opposition(
            cpam.select(*STRUCTURE, *export_attributes("cpam", cpam.columns)), cpam["role"])
        links = pl.DataFrame(
            self.links,
            schema={
                "caf_handle": pl.String,
                "cpam_handle": pl.String,
                "pass": pl.String,
                "match_weight": pl.Float64,
                "match_probability": pl.Float64,
            },
        )
        paths = (
            folder / "caf.pseudo.parquet",
            folder / "cpam.pseudo.parquet",
            folder / "links.parquet",
        )
        caf.write_parquet(paths[0])
        cpam.write_parquet(paths[1])
        links.write_parquet(paths[2])
        return paths
