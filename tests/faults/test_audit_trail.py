"""The audit trail after a real chain run: the head the report prints is the head after the
run's own entry (and `audit verify --head` accepts it); each agency's own chained log records
its ingest, export, re-identification and CCAS feedback."""

from __future__ import annotations

import json
import re
import stat

from faults_world import cli

from pipeline.trust import audit


def test_report_prints_the_head_after_the_runs_own_entry(world_template):
    out = world_template.out
    log = out / "audit.jsonl"
    status = audit.verify(log)
    assert status.ok
    report = json.loads((out / "central" / "report.json").read_text())
    head = report["facts"]["audit"]["head"]
    assert head == status.head  # not the head before the entry
    assert report["facts"]["audit"]["entries"] == status.entries
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["event"] == "central_run" and last["outcome"] == "succes"
    assert head == audit.head_of(last)
    assert head in (out / "central" / "report.html").read_text()
    run = json.loads((out / "central" / "run.json").read_text())
    assert run["audit_head"] == head
    # the entry binds the results the report describes
    for name, digest in last["outputs"].items():
        assert run["outputs"][name] == digest
    proc = cli("audit", "verify", "--log", str(log), "--head", head)
    assert proc.returncode == 0, proc.stderr
    assert f"tête {head}" in proc.stdout


def test_each_agency_keeps_its_own_private_chained_log(world_template):
    for agency in ("caf", "cpam"):
        log = world_template.out / agency / "audit.jsonl"
        assert stat.S_IMODE(log.stat().st_mode) == 0o600
        assert audit.verify(log).ok
        entries = [json.loads(x) for x in log.read_text().splitlines()]
        # the staged exchange: the agency answers the centre's residue request between the two;
        # after the links the CAF computes its parts for the detecting operator
        assert [e["event"] for e in entries] == ["ingestion", "export", "residu",
                                                 *(["parts"] if agency == "caf" else []),
                                                 "reidentification"]
        assert {e["agency"] for e in entries} == {agency}
        export = entries[1]
        assert f"{agency}.pseudo.parquet" in export["outputs"] and export["rows"] > 0
        assert entries[0]["rows"]["lues"] > 0
    # no raw identifier: only names of files, digests, counts and labels
    text = (world_template.out / "caf" / "audit.jsonl").read_text()
    assert not re.search(r"\b[12]\d{12}\b", text)


def test_feedback_load_is_recorded_in_the_agency_log(world):
    work = world.out / "caf"
    # the CCAS sends the lists back with their outcome columns: feedback load reads them directly
    filled = work / "listes"
    before = audit.verify(audit.agency_log(work)).entries
    proc = cli("feedback", "load", "--feedback", str(filled), "--listes",
               str(work / "listes"), "--out", str(work / "retours"))
    assert proc.returncode == 0, proc.stderr
    status = audit.verify(audit.agency_log(work))
    assert status.ok and status.entries == before + 1
    last = json.loads(audit.agency_log(work).read_text().splitlines()[-1])
    assert last["event"] == "retours" and any(n.endswith(".xlsx") for n in last["inputs"])
    assert "retours_taux.csv" in last["outputs"]
    again = cli("feedback", "load", "--feedback", str(filled), "--listes",
                str(work / "listes"), "--out", str(work / "retours"))
    assert again.returncode == 2 and "--remplacer" in again.stderr

