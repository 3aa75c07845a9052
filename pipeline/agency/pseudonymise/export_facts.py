"""Aggregate facts that travel with an export, inside its signed manifest (`extra`).

The central report must show the agencies' ingestion rejections by reason and name the quartiers,
but the operator only receives the export and its manifest. Both facts are small, signed with the
manifest, and carry no person-level value: counts per reason for the whole file (not per quartier,
so the small-cell rule does not apply) and the public quartier names of the territory table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

INGEST_STATS = "ingest_stats.json"
_COUNTS = (("lues", "lignes_lues"), ("acceptees", "lignes_acceptees"),
           ("rejetees", "lignes_rejetees"), ("avertissements", "avertissements"))
_REASON_FIELDS = ("action", "colonne", "motif")


def _reasons(items: Any) -> list[dict[str, Any]]:
    """Keep only (action, colonne, motif, nombre) of each reason: labels and a count."""
    out = []
    for it in items if isinstance(items, list) else []:
        if isinstance(it, dict) and isinstance(it.get("nombre"), int):
            row = {k: str(it[k]) if it.get(k) is not None else None for k in _REASON_FIELDS}
            out.append({**row, "nombre": int(it["nombre"])})
    return out


def ingest_summary(workdir: Path) -> dict[str, Any]:
    """Counts by reason from the agency's ingest_stats.json ({} when the file is absent)."""
    path = Path(workdir) / INGEST_STATS
    if not path.is_file():
        return {}
    stats = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, Any] = {k: int(stats[src]) for k, src in _COUNTS
                           if isinstance(stats.get(src), int)}
    out["motifs"] = _reasons(stats.get("motifs"))
    quarantine = stats.get("quarantine") or stats.get("quarantaine")
    if isinstance(quarantine, dict):
        out["quarantaine"] = {k: v for k, v in quarantine.items() if isinstance(v, int)}
        out["quarantaine_motifs"] = _reasons(quarantine.get("motifs"))
    return {"ingestion": out}


def quartier_names(territory: Path | None) -> dict[str, Any]:
    """{code: name} from the territory table's `quartier;nom_quartier` columns, if present."""
    if territory is None or not Path(territory).is_file():
        return {}
    table = pl.read_csv(territory, separator=";", infer_schema=False, encoding="utf8-lossy")
    if not {"quartier", "nom_quartier"} <= set(table.columns):
        return {}
    pairs = table.select(pl.col("quartier").str.strip_chars(),
                         pl.col("nom_quartier").str.strip_chars()).unique().sort("quartier")
    return {"quartiers": dict(pairs.iter_rows())}


def export_facts(workdir: Path, territory: Path | None) -> dict[str, Any]:
    return ingest_summary(workdir) | quartier_names(territory)
