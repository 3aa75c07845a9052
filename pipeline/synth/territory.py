"""Territory reference data: communes, IRIS -> quartier table, streets (YAML in territories/)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from pipeline.common.errors import PipelineError
from pipeline.common.files import write_text
from pipeline.common.tables import write_csv

TERRITORIES = Path(__file__).with_name("territories")

README = """# Table IRIS -> quartier du territoire d'exemple

**Données de référence ILLUSTRATIVES et SYNTHÉTIQUES** (agglomération de Flers, Orne), produites
par `nonrecours synth` pour les tests et la démonstration. Les codes IRIS (code commune + 4
chiffres) et les codes quartier (`QN06101M` pour un QPV, `HQ61169A` pour un quartier hors QPV)
respectent les formats officiels mais ne reproduisent PAS les tables INSEE / ANCT. Un territoire
réel fournit sa propre table, avec les mêmes colonnes :

`code_iris;code_commune;nom_commune;quartier;nom_quartier;qpv`

Un IRIS absent de la table est rattaché au quartier `HORS_TERRITOIRE` (et compté).
"""


@dataclass(frozen=True)
class Territory:
    """The reference table plus what the generator needs to place households."""

    name: str
    table: pl.DataFrame  # code_iris;code_commune;nom_commune;quartier;nom_quartier;qpv
    weights: np.ndarray
    iris_absent: list[str]
    postal: dict[str, str]
    streets: list[str]


def load(territory: str) -> Territory:
    """A territory by name (territories/<name>.yaml) or by path to such a YAML file."""
    path = Path(territory)
    if not path.suffix:
        path = TERRITORIES / f"{territory}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in TERRITORIES.glob("*.yaml")))
        raise PipelineError(f"Territoire inconnu « {territory} » (disponibles : {known})")
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    communes = doc["communes"]
    rows = [
        {
            "code_iris": str(i["code_iris"]),
            "code_commune": str(i["commune"]),
            "nom_commune": communes[str(i["commune"])]["nom"],
            "quartier": i["quartier"],
            "nom_quartier": i["nom_quartier"],
            "qpv": int(i["qpv"]),
        }
        for i in doc["iris"]
    ]
    weights = np.array([float(i["weight"]) for i in doc["iris"]])
    return Territory(
        name=doc["name"],
        table=pl.DataFrame(rows, schema={"code_iris": pl.String, "code_commune": pl.String,
                                         "nom_commune": pl.String, "quartier": pl.String,
                                         "nom_quartier": pl.String, "qpv": pl.Int8}),
        weights=weights / weights.sum(),
        iris_absent=[str(c) for c in doc.get("iris_hors_table", [])],
        postal={str(k): str(v["code_postal"]) for k, v in communes.items()},
        streets=list(doc["streets"]),
    )


def write(t: Territory, out: Path) -> None:
    """territory/iris_quartiers.csv and its README (illustrative synthetic data)."""
    write_csv(t.table, out / "territory" / "iris_quartiers.csv", sort_by=["code_iris"])
    write_text(out / "territory" / "README.md", README)
