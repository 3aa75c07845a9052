"""The polars engine (the default, fast) and Great Expectations (the reference) agree exactly.

Every scenario carries planted faults so that each expectation type used by the suites is seen
both passing and failing; the per-check records (success, counts, percentages, observed values,
column mismatches, French messages) must be identical between the two engines.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from test_report_validation import _bad_export_frame, _targets, caf_export, hx, links

from pipeline.central.report.validation import validate
from pipeline.common.errors import PipelineError


def cpam_export(n: int = 30) -> pl.DataFrame:
    """A CPAM export for the linking operator (contract 6) with planted faults: the status and
    the role it must not carry, a handle that is not hex (row 4), and an opposed person keeping
    a name-and-date token (row 3)."""
    return pl.DataFrame({
        "handle": [hx(i, 11) if i != 4 else "X" * 32 for i in range(n)],
        "foyer": [hx(i // 2, 12) for i in range(n)],
        "opposition": [i == 3 for i in range(n)],
        "role": (["ASSURE", "ENFANT"] * n)[:n],
        "statut_css": ["en_cours"] * n,
        **{f"c_{b}": pl.Series([i * 31 + k for i in range(n)], dtype=pl.UInt64)
           for k, b in enumerate(("css_active", "css_en_cours", "css_terminee_recente",
                                  "css_illisible"))},
        "tok_nir": [hx(i, 13) for i in range(n)],
        "tok_nom_dob": [hx(i, 14) for i in range(n)],
        "tok_nom_ym": [hx(i, 15) for i in range(n)],
    })


SCENARIOS = {
    "caf_good": ("caf_export", caf_export, {}),
    "caf_bad": ("caf_detection", _bad_export_frame, {"expected_rows_min": 50}),
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
    assert by_key["handle_format:handle"]["unexpected_count"] == 1
    assert by_key["opposition_sans_attributs:tok_nom_ym"]["success"] is False
    assert any("colonnes non autorisées" in m and "statut_css" in m
               for m in doc["critical_failures"])


def test_unknown_engine_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="moteur de validation inconnu"):
        validate("caf_export", caf_export(3), tmp_path, engine="pandas")
