"""CSS figures for the ground truth, read from the detect stage's parameter file.

The generator computes the rule truth on its own (it must not import pipeline.central.detect code,
so a
bug there cannot hide in the truth); only the official figures are shared, via the YAML file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import yaml

from pipeline.common.errors import PipelineError

CSS_YAML = Path(__file__).resolve().parent.parent / "shared" / "parameters" / "css.yaml"


@dataclass(frozen=True)
class CssTable:
    """The figures in force at one reference date."""

    gratuite: tuple[float, float, float, float, float]  # cells 1..4, extra
    participation: tuple[float, float, float, float, float]
    forfait_monthly: tuple[float, float, float]  # 1, 2, 3+ persons
    overseas_departements: tuple[str, ...]
    overseas_uplift: float
    aah_since: date
    period_from: date
    dependant_age_limit: int = 25  # art. R.861-2 CSS: dependants count only under this age

    def increments(self, kind: str, overseas: bool) -> np.ndarray:
        """Increment of rank k (index k, 1..5 where 5 = every rank beyond 4); index 0 unused."""
        cells = np.array(getattr(self, kind), dtype=np.float64)
        if overseas:
            cells = np.round(cells * (1.0 + self.overseas_uplift))
        inc = np.zeros(6)
        inc[1] = cells[0]
        inc[2:5] = np.diff(cells[:4])
        inc[5] = cells[4]
        return inc


def _as_date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def load_table(reference_date: date, path: Path = CSS_YAML) -> CssTable:
    """The confirmed table in force at `reference_date`; refuse loudly when there is none."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    for period in doc["ceilings"]:
        start, end = _as_date(period["from"]), _as_date(period["to"])
        if start <= reference_date <= end:
            if not period.get("confirmed", False):
                break
            forfait = next(
                (p["monthly"] for p in doc["housing_forfait"]["periods"]
                 if _as_date(p["from"]) <= reference_date <= _as_date(p["to"])),
                None,
            )
            if forfait is None:
                break
            g, p = period["gratuite"], period["participation"]
            return CssTable(
                gratuite=(g[1], g[2], g[3], g[4], g["extra"]),
                participation=(p[1], p[2], p[3], p[4], p["extra"]),
                forfait_monthly=(forfait[1], forfait[2], forfait[3]),
                overseas_departements=tuple(doc["overseas"]["departements"]),
                overseas_uplift=float(doc["overseas"]["uplift"]),
                aah_since=_as_date(doc["automatic_attribution"]["aah_isole_presumption_since"]),
                period_from=start,
                dependant_age_limit=int(doc["household"]["dependant_age_limit"]),
            )
    raise PipelineError(
        f"Aucun barème CSS confirmé pour la date de référence {reference_date.isoformat()} "
        f"dans {path} : la vérité terrain ne peut pas être calculée."
    )
