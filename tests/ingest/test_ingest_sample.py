"""On the committed synthetic sample: rejections are exactly the deliberately malformed rows."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from pipeline.agency.ingest import ingest

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
MALFORMED = SAMPLE / "truth" / "malformed.csv"


def _read(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")), delimiter=";"))


@pytest.mark.skipif(not MALFORMED.exists(), reason="sample_data not generated")
@pytest.mark.parametrize("agency", ["caf", "cpam"])
def test_sample_rejections_match_the_generator_truth(agency, tmp_path):
    result = ingest(agency, SAMPLE / "raw" / f"{agency}_extract.csv", tmp_path)
    truth = [r for r in _read(MALFORMED) if r["fichier"] == f"raw/{agency}_extract.csv"]
    report = _read(result.rejections)
    # An unreadable CSS code is kept as INCONNU with a warning (never read as "no CSS").
    reported = {int(r["line"]) for r in report + _read(result.warnings)}
    rejected = {int(r["line"]) for r in report if r["action"] == "ligne rejetée"}
    malformed = {int(r["line"]) for r in truth}
    assert malformed <= reported  # every planted defect is reported
    assert rejected <= malformed  # no clean row is thrown away
    assert result.rows_accepted + result.rows_rejected + result.rows_quarantined == \
        result.rows_read
    # The sample's households are consistent: only dossiers with a planted bad row are held back.
    stats = json.loads(result.stats.read_text(encoding="utf-8"))["quarantaine"]["par_regle"]
    fired = {rule for rule, n in stats.items() if n["dossiers"]}
    assert fired <= {"demandeur_rejete", "membre_rejete", "sans_demandeur"}
    assert fired, "the planted bad rows belong to dossiers that must be held back"
