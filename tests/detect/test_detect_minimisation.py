"""Contract 3's minimised features never change a rule outcome (pipeline/shared/features.py).

The CAF sends `type_foyer = monoparent` only under the free ceiling and `a_aah` only where a
rule can read it (features.yaml). On every combination of household make-up, resources,
benefits, CPAM CSS status and linkage, the real detection run on the minimised export and on
the same export with the exact values must flag the same households with the same rules.
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import polars as pl
from detect_builders import Builder, R

from pipeline.central.detect import detect

MAKEUPS = {
    "seule": ([("DEM", 40)], "ISOLE"),
    "monoparent": ([("DEM", 35), ("ENF", 8)], "ISOLE"),
    "couple": ([("DEM", 40), ("CJT", 38), ("ENF", 10)], "COUPLE"),
    "isole_apc": ([("DEM", 50), ("APC", 80)], "ISOLE"),
}
RESOURCES = (3000.0, 14000.0, 30000.0, None)
BENEFITS = [tuple(b for b, on in zip(("RSA", "AAH", "PPA"), bits, strict=True) if on)
            for bits in itertools.product((False, True), repeat=3)]
D = dt.timedelta
CSS = {
    "aucune": ("NON", None, None),
    "en_cours": ("GRATUITE", dt.date(2025, 1, 1), R + D(200)),
    "fin_proche": ("PARTICIPATION", dt.date(2025, 1, 1), R + D(30)),
    "terminee": ("GRATUITE", dt.date(2024, 1, 1), R - D(100)),
    "illisible": ("INCONNU", dt.date(2025, 1, 1), R + D(200)),
}


def _grid(b: Builder) -> int:
    n = 0
    for (members, situation), res, benefits, (css, debut, fin), linked in itertools.product(
        MAKEUPS.values(), RESOURCES, BENEFITS, CSS.values(), ("adults", "children", "none")
    ):
        if linked == "children" and not any(r in ("ENF", "APC") for r, _ in members):
            continue
        b.foyer(members, ressources=res, prestations=benefits, situation=situation, css=css,
                css_debut=debut, css_fin=fin, linked=linked)
        n += 1
    return n


def _exact(caf: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """The export with the values contract 3 withholds put back (from the agency's rows)."""
    household = rows.group_by("foyer").agg(
        _aah=pl.col("prestations").first().list.contains("AAH"),
        _mono=(pl.col("situation_familiale").first() == "ISOLE")
        & ((pl.col("role") == "ENF") & pl.col("a_charge_css").fill_null(True)).any(),
    )
    return caf.join(household, on="foyer", how="left").with_columns(
        a_aah=pl.col("_aah"),
        type_foyer=pl.when(pl.col("type_foyer") == "personne_seule")
        .then(pl.col("type_foyer"))
        .when(pl.col("_mono")).then(pl.lit("monoparent")).otherwise(pl.lit("autre")),
    ).drop("_aah", "_mono")


def _flags(out: Path) -> set[tuple[str, str, tuple[str, ...]]]:
    t = pl.read_parquet(out / "targets.parquet")
    rows = t.select("agence", "foyer", "regles").iter_rows()
    return {(a, f, tuple(sorted(r))) for a, f, r in rows}


def test_minimised_features_flag_exactly_what_the_exact_ones_flag(tmp_path: Path) -> None:
    b = Builder(R)
    assert _grid(b) > 1000
    caf_path, cpam_path, links_path = b.write(tmp_path / "min")
    minimised = pl.read_parquet(caf_path)
    exact = _exact(minimised, b.caf_rows())
    # the minimisation does withhold something on this grid (else the test proves nothing)
    assert (exact["a_aah"] != minimised["a_aah"]).sum() > 100
    assert (exact["type_foyer"] != minimised["type_foyer"]).sum() > 100
    exact_path = tmp_path / "exact.parquet"
    exact.write_parquet(exact_path)
    detect(caf_path, cpam_path, links_path, tmp_path / "out_min")
    detect(exact_path, cpam_path, links_path, tmp_path / "out_exact")
    got, want = _flags(tmp_path / "out_min"), _flags(tmp_path / "out_exact")
    assert len(want) > 300  # the grid exercises the rules
    assert got == want
