"""CSS parameters (css.yaml) for one reference date, as joinable tables.

Side-neutral (pipeline/shared): the agency computes the ceiling position of each household from
it (pipeline/shared/features.py) and the central side describes the table it was given; neither
imports the other. The table itself stays at pipeline/shared/parameters/css.yaml (the path the
conventions and the audit name).

The ceiling arithmetic lives in exactly one place: this module turns the official cells of the
period into per-rank *increments* (cell(k) - cell(k-1), `extra` beyond 4), and
`sql/ceilings.sql` sums them over the ranked members of a household (halved for a minor in
alternating residence). Summing increments reproduces the official cells for n <= 4 and
"cell(4) + extra per person" beyond, which is what R.861-3 says.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from pipeline.common.errors import InputError, RefusalError

ZONES = ("metropole", "outre_mer")
MAX_RANK = 40  # households larger than this are refused rather than silently capped


@dataclass(frozen=True)
class CssPeriod:
    """One row of the ceilings table of css.yaml, with its housing forfait."""

    start: dt.date
    end: dt.date | None
    confirmed: bool
    gratuite: dict[str, float]
    participation: dict[str, float]
    forfait_mensuel: dict[int, float]

    @property
    def label(self) -> str:
        end = self.end.isoformat() if self.end else "…"
        return f"{self.start.isoformat()} → {end}"

    @property
    def label_fr(self) -> str:
        """'du 01/04/2025 au 31/03/2026' for French documents."""
        end = f" au {self.end:%d/%m/%Y}" if self.end else ""
        return f"du {self.start:%d/%m/%Y}{end}"


@dataclass(frozen=True)
class ParameterSelection:
    """The period applied to a reference date, and the loud warning when it is not confirmed."""

    reference_date: dt.date
    period: CssPeriod
    overseas_departements: tuple[str, ...]
    overseas_uplift: float
    warning: str | None


_PINNED: Path | None = None  # a table pinned by the convention (pipeline.trust.reference)


def use_parameters(path: Path | None) -> None:
    """Read `path` instead of the bundled table (None: back to the bundled table).

    Called once the convention's pinned table is verified, at the agency (features computed at
    source) and at the central gate alike."""
    global _PINNED
    _PINNED = Path(path) if path else None


def default_parameters_path() -> Path:
    if _PINNED is not None:
        return _PINNED
    return Path(__file__).resolve().parent / "parameters" / "css.yaml"


_PARSED: dict[str, Any] = {}  # file text -> parsed table (one step asks for it 3 times)


def load_parameters(path: Path | None = None) -> dict[str, Any]:
    """The parameter table, parsed once per distinct file text (the text is read each call, so
    an edited or re-pinned file is parsed again); a deep copy, callers may change it."""
    path = path or default_parameters_path()
    try:
        text = path.read_text(encoding="utf-8")
        if text not in _PARSED:
            _PARSED.clear()
            _PARSED[text] = yaml.safe_load(text)
        data = copy.deepcopy(_PARSED[text])
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(path, f"paramètres CSS illisibles ({type(exc).__name__})") from exc
    if not isinstance(data, dict) or "ceilings" not in data:
        raise InputError(path, "section « ceilings » absente")
    return data


def dependant_age_limit(data: dict[str, Any] | None = None) -> int:
    """Dependants count in the CSS household only below this age (art. R.861-2 CSS)."""
    data = data or load_parameters()
    try:
        return int(data["household"]["dependant_age_limit"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(default_parameters_path(), "household.dependant_age_limit absent") from exc


def _as_date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _periods(data: dict[str, Any]) -> list[CssPeriod]:
    forfaits = [
        (
            _as_date(p["from"]),
            _as_date(p.get("to")),
            {int(k): float(v) for k, v in p["monthly"].items()},
        )
        for p in data.get("housing_forfait", {}).get("periods", [])
    ]
    out = []
    for row in data["ceilings"]:
        start, end = _as_date(row["from"]), _as_date(row.get("to"))
        forfait = next((f for s, _e, f in forfaits if s == start), {})
        out.append(
            CssPeriod(
                start=start,
                end=end,
                confirmed=bool(row.get("confirmed", False)),
                gratuite={str(k): float(v) for k, v in row["gratuite"].items()},
                participation={str(k): float(v) for k, v in row["participation"].items()},
                forfait_mensuel=forfait,
            )
        )
    return sorted(out, key=lambda p: p.start)


def select_period(
    reference_date: dt.date, data: dict[str, Any] | None = None, *, strict: bool = False
) -> ParameterSelection:
    """Pick the confirmed table in force at `reference_date`.

    Without one, never reuse an older table silently: refuse when `strict`, otherwise apply the
    most recent table that started before the date and carry a warning that every output repeats.
    """
    data = data or load_parameters()
    periods = _periods(data)
    overseas = data.get("overseas", {})
    deps = tuple(str(d) for d in overseas.get("departements", []))
    uplift = float(overseas.get("uplift", 0.0))
    for p in periods:
        if p.confirmed and p.start <= reference_date and (p.end is None or reference_date <= p.end):
            if not p.forfait_mensuel:
                raise InputError(
                    default_parameters_path(), f"forfait logement absent pour {p.label}"
                )
            return ParameterSelection(reference_date, p, deps, uplift, None)
    earlier = [p for p in periods if p.confirmed and p.start <= reference_date]
    message = f"AUCUN BARÈME CSS CONFIRMÉ pour la date de référence {reference_date:%d/%m/%Y}"
    if strict or not earlier:
        raise RefusalError(
            message + " : mettez à jour pipeline/shared/parameters/css.yaml avant de lancer "
            "la détection" + ("" if earlier else " (aucun barème antérieur disponible)")
        )
    used = earlier[-1]
    warning = (
        f"{message} : barème du {used.label} appliqué PROVISOIREMENT ; plafonds à vérifier "
        "avant tout contact"
    )
    return ParameterSelection(reference_date, used, deps, uplift, warning)


def round_euro(x: float) -> float:
    """Round half up to the euro (the official overseas cells are rounded this way)."""
    return float(math.floor(x + 0.5))


def zone_cells(sel: ParameterSelection, zone: str) -> dict[str, dict[str, float]]:
    """Official cells (1..4, extra) of a zone: overseas = metropolitan × (1 + uplift), rounded."""
    factor = 1.0 if zone == "metropole" else 1.0 + sel.overseas_uplift
    out: dict[str, dict[str, float]] = {}
    for kind in ("gratuite", "participation"):
        cells = getattr(sel.period, kind)
        out[kind] = {
            k: (v if zone == "metropole" else round_euro(v * factor)) for k, v in cells.items()
        }
    return out


def increments_table(sel: ParameterSelection, max_rank: int = MAX_RANK) -> pl.DataFrame:
    """Per zone and rank k: what the k-th person adds to the ceiling (free / contribution)."""
    rows = []
    for zone in ZONES:
        cells = zone_cells(sel, zone)
        for k in range(1, max_rank + 1):
            row: dict[str, Any] = {"zone": zone, "rang": k}
            for kind, c in cells.items():
                if k == 1:
                    inc = c["1"]
                elif k <= 4:
                    inc = c[str(k)] - c[str(k - 1)]
                else:
                    inc = c["extra"]
                row[f"inc_{kind}"] = float(inc)
            rows.append(row)
    return pl.DataFrame(
        rows,
        schema={
            "zone": pl.String,
            "rang": pl.Int32,
            "inc_gratuite": pl.Float64,
            "inc_participation": pl.Float64,
        },
        orient="row",
    )


def forfait_table(sel: ParameterSelection, max_size: int = MAX_RANK) -> pl.DataFrame:
    """Annual housing forfait by household size (the 3-person amount applies to 3 and more)."""
    monthly = sel.period.forfait_mensuel
    top = max(monthly)
    rows = [(n, round(monthly[min(n, top)] * 12, 2)) for n in range(1, max_size + 1)]
    return pl.DataFrame(
        rows, schema={"taille": pl.Int32, "forfait_annuel": pl.Float64}, orient="row"
    )


def describe(sel: ParameterSelection) -> dict[str, Any]:
    """JSON-friendly description of the table used (stats, list headers)."""
    return {
        "date_reference": sel.reference_date.isoformat(),
        "periode": sel.period.label,
        "periode_fr": sel.period.label_fr,
        "confirme": sel.warning is None,
        "plafonds_metropole": zone_cells(sel, "metropole"),
        "plafonds_outre_mer": zone_cells(sel, "outre_mer"),
        "departements_outre_mer": list(sel.overseas_departements),
        "forfait_logement_mensuel": {str(k): v for k, v in sel.period.forfait_mensuel.items()},
        "avertissement": sel.warning,
    }
