"""The polars engine (the default, fast) and Great Expectations (the reference) agree exactly.

Every scenario carries planted faults so that each expectation type used by the suites is seen
both passing and failing; the per-check records (success, counts, percentages, observed values,
column mismatches, French messages) must be identical between the two engines.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from test_report_validation import _bad_export_frame, _targets, caf_export, hx, links

from pipeline.central.report.validation import validate
from pipeline.common.errors import PipelineError


def cpam_export(n: int = 30) -> pl.DataFrame:
    """A CPAM export (features) with an opposed person keeping attributes (3) and a status
    outside the catalogue's values (4)."""
    return pl.DataFrame({
        "handle": [hx(i, 11) for i in range(n)],
        "foyer": [hx(i // 2, 12) for i in range(n)],
        "opposition": [i == 3 for i in range(n)],
        "role": (["ASSURE", "ENFANT"] * n)[:n],
        "sexe": pl.Series(([1, 2] * n)[:n], dtype=pl.Int8),
        "nir_statut": ["certifie"] * n,
        "code_commune": ["61169"] * n,
        # features: an out-of-domain status on row 4; row 3 (opposed) keeps a status
        "statut_css": ["en_cours"] * 4 + ["OUI"] + ["aucune"] * (n - 5),
        "css_gratuite_en_cours": [True] * 4 + [False] * (n - 4),
        "date_reference": [dt.date(2026, 3, 2)] * n,
        "tok_nir": [hx(i, 13) for i in range(n)],
        "tok_nom_dob": [hx(i, 14) for i in range(n)],
    })


SCENARIOS = {
    "caf_good": ("caf_export", caf_export, {}),
    "caf_bad": ("caf_export", _bad_export_frame, {"expected_rows_min": 50}),
    "cpam_bad": ("cpam_export", cpam_export, {}),
    "links_bad": ("links", lambda: links().with_columns(
        pl.when(pl.int_range(pl.len()) == 5).then(pl.col("cpam_handle").first())
        .otherwise("cpam_handle").alias("cpam_handle")),
        {"caf_handles": [hx(i, 1) for i in range(29)], "caf_rows": 29, "cpam_rows": 100}),
    "targets_dup": ("targets", lambda: pl.concat([_targets(), _targets().head(2)]), {}),
}


def _run(name: str, engine: str, root: Path) -> dict:
    stage, frame, ctx = SCENARIOS[name]
    out = validate(stage, frame(), root / name / engine, context=ctx, engine=engine)
    return json.loads(out.results_path.read_text("utf-8"))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_polars_engine_gives_ge_records(name: str, tmp_path: Path) -> None:
    native, ge = _run(name, "polars", tmp_path), _run(name, "great_expectations", tmp_path)
    assert {c["engine"] for c in native["checks"] if c["evaluated"] and "type" in c
            and not c["type"].startswith("cross_check")} == {"polars"}

    def strip(doc: dict) -> list[dict]:
        return [{k: v for k, v in c.items() if k != "engine"} for c in doc["checks"]]

    assert strip(native) == strip(ge)
    assert native["statistics"] == ge["statistics"]
    assert native["critical_failures"] == ge["critical_failures"]
    assert native["warnings"] == ge["warnings"]


def test_planted_faults_are_seen_by_the_polars_engine(tmp_path: Path) -> None:
    doc = _run("cpam_bad", "polars", tmp_path)
    by_key = {c["key"]: c for c in doc["checks"]}
    assert by_key["statut_css_domaine:statut_css"]["unexpected_count"] == 1
    assert by_key["opposition_sans_attributs:statut_css"]["success"] is False
    assert any("statut_css" in m for m in doc["critical_failures"] + doc["warnings"])


def test_unknown_engine_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="moteur de validation inconnu"):
        validate("caf_export", caf_export(3), tmp_path, engine="pandas")
