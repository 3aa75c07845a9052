"""Retention: outputs older than the convention's retention period are purged, and audited."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from trust_world import ROOT

from pipeline.trust import audit
from pipeline.trust.purge import purge

CONVENTION = ROOT / "conventions" / "demo-flers.yaml"  # retention_days: 365
TODAY = dt.date(2027, 6, 1)


def touch(path: Path, day: dt.date, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    stamp = dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def test_purge_deletes_only_what_is_past_retention_and_audits_it(tmp_path):
    out = tmp_path / "out"
    old = dt.date(2026, 5, 1)  # 396 days before TODAY
    recent = dt.date(2026, 7, 1)  # 335 days
    touch(out / "central" / "targets.parquet", old)
    touch(out / "central" / "report.html", old)
    touch(out / "caf" / "handles.parquet", old)
    touch(out / "cpam" / "handles.parquet", recent)
    touch(out / "transfer" / "caf" / "caf.pseudo.parquet", old)
    touch(out / "caf" / "keys" / "private" / "caf.ed25519.key.json", old)
    log = out / "audit.jsonl"
    deleted = purge(out, CONVENTION, TODAY, log)
    assert deleted == [out / "caf" / "handles.parquet", out / "central", out / "transfer"]
    assert not (out / "central").exists() and not (out / "caf" / "handles.parquet").exists()
    assert (out / "cpam" / "handles.parquet").exists()
    assert (out / "caf" / "keys" / "private" / "caf.ed25519.key.json").exists()
    status = audit.verify(log)
    assert status.ok and status.entries == 2
    entries = [json.loads(x) for x in log.read_text().splitlines()]
    assert [e["path"] for e in entries] == ["central", "transfer"]
    assert all(e["event"] == "purge" and e["retention_days"] == 365 for e in entries)
    # the agency's deletion is in the agency's own log, not the operator's
    caf_log = out / "caf" / "audit.jsonl"
    assert audit.verify(caf_log).ok
    (caf_entry,) = [json.loads(x) for x in caf_log.read_text().splitlines()]
    assert caf_entry["event"] == "purge" and caf_entry["path"] == "caf/handles.parquet"
    assert caf_entry["age_days"] == 396 and len(caf_entry["sha256"]) == 64
    assert oct(caf_log.stat().st_mode & 0o777) == "0o600"


def test_a_folder_is_as_old_as_its_newest_file(tmp_path):
    out = tmp_path / "out"
    touch(out / "central" / "links.parquet", dt.date(2025, 1, 1))
    touch(out / "central" / "report.json", dt.date(2027, 5, 1))
    assert purge(out, CONVENTION, TODAY, out / "audit.jsonl") == []
    assert (out / "central" / "links.parquet").exists()


def test_dry_run_deletes_nothing_and_logs_nothing(tmp_path):
    out = tmp_path / "out"
    touch(out / "central" / "targets.parquet", dt.date(2025, 1, 1))
    assert purge(out, CONVENTION, TODAY, out / "audit.jsonl", dry_run=True) == [out / "central"]
    assert (out / "central" / "targets.parquet").exists()
    assert not (out / "audit.jsonl").exists()


def test_purge_covers_named_lists_ingested_tables_and_exports(tmp_path):
    out = tmp_path / "out"
    old = dt.date(2026, 5, 1)
    agency_files = [
        "listes/quartier_QN01.xlsx", "listes/listes.parquet", "retours/retours_taux.csv",
        "ingested.parquet", "rejections.csv", "avertissements.csv", "quarantaine.csv",
        "export/cpam.pseudo.parquet", "export/cpam.manifest.json",
    ]
    for name in agency_files:
        touch(out / "cpam" / name, old)
    touch(out / "cpam" / "keys" / "public" / "cpam.pem", old)
    touch(out / "cpam" / "ingest_stats.json", old)  # counts only: kept as the run's record
    deleted = purge(out, CONVENTION, TODAY, out / "audit.jsonl")
    expected = {"listes", "retours", "ingested.parquet", "rejections.csv", "avertissements.csv",
                "quarantaine.csv", "export"}
    assert {p.relative_to(out / "cpam").as_posix() for p in deleted} == expected
    for name in expected:
        assert not (out / "cpam" / name).exists(), name
    assert (out / "cpam" / "keys" / "public" / "cpam.pem").exists()
    log = out / "cpam" / "audit.jsonl"
    assert audit.verify(log).ok
    logged = {json.loads(x)["path"] for x in log.read_text().splitlines()}
    assert logged == {f"cpam/{name}" for name in expected}
    assert not (out / "audit.jsonl").exists()  # nothing central was deleted
