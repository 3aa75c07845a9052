"""Agency statistics files are owner-only and small-cell suppressed (issue 11, trust holes)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pipeline.shared.agency_stats import suppressed_counts, write_agency_stats

ROOT = Path(__file__).resolve().parents[2]


def test_small_quartier_counts_are_hidden_and_not_derivable():
    row = suppressed_counts({"Q1": 3, "Q2": 20, "Q3": 40})
    assert row["Q1"] == "< 11"
    hidden = [k for k, v in row.items() if not isinstance(v, int)]
    # Q1 must not be recoverable as Total minus the published cells
    assert len(hidden) >= 2, row
    assert suppressed_counts({"Q1": 30, "Q2": 40}) == {"Q1": 30, "Q2": 40, "Total": 70}


def test_stats_file_is_owner_only_and_suppressed(tmp_path):
    path = write_agency_stats(tmp_path / "s.json", {"par_quartier": {"Q1": 2, "Q2": 50},
                                                     "organisme": "caf"})
    assert path.stat().st_mode & 0o077 == 0
    doc = json.loads(path.read_text("utf-8"))
    assert doc["par_quartier"]["Q1"] == "< 11" and doc["organisme"] == "caf"
    # secondary suppression: with Q2 published, Total − Q2 would give Q1
    assert 2 not in doc["par_quartier"].values() and doc["par_quartier"]["Q2"] == "s"


def test_reidentify_stats_file_is_owner_only_and_suppressed(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "reidentify"))
    from reid_builders import write_agency

    from pipeline.agency.reidentify import reidentify

    paths = write_agency(tmp_path)
    out = tmp_path / "listes"
    res = reidentify("caf", paths["targets"], paths["work"], out,
                     opposition=paths["opposition"], contacts=paths["contacts"],
                     run_info={"run_date": "2026-11-22", "convention_id": "demo-test"})
    stats_file = out / "reidentify_stats.json"
    assert stats_file.stat().st_mode & 0o077 == 0
    exact = res.stats["par_quartier"]
    assert exact and all(0 < n < 11 for n in exact.values())  # the builder's small quartier
    published = json.loads(stats_file.read_text("utf-8"))["par_quartier"]
    assert all(published[q] == "< 11" for q in exact), published
    sys.modules.pop("reid_builders", None)


def test_feedback_count_files_are_owner_only(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "reidentify"))
    from reid_builders import write_lists

    from pipeline.agency.reidentify.feedback import load_feedback

    listes = write_lists(tmp_path)
    res = load_feedback(listes, [listes], tmp_path / "retours")
    assert len(res["fichiers"]) == 2
    for name in res["fichiers"]:
        assert Path(name).stat().st_mode & 0o077 == 0, name
    sys.modules.pop("reid_builders", None)
