"""The hash-chained audit log: any edit, deletion, insertion or reordering is caught."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from pipeline.common.errors import PipelineError, RefusalError
from pipeline.trust import audit
from pipeline.trust.canonical import canonical_json, sha256_hex
from pipeline.trust.cli import register


def filled(tmp_path: Path, n: int = 5) -> Path:
    log = tmp_path / "audit.jsonl"
    for i in range(n):
        audit.append(log, {"event": "central_run", "run_id": f"run{i}", "outcome": "succes",
                           "inputs": {"caf": "a" * 64}})
    return log


def lines(log: Path) -> list[bytes]:
    return log.read_bytes().splitlines(keepends=True)


def test_chain_verifies_and_links_each_entry(tmp_path):
    log = filled(tmp_path)
    status = audit.verify(log)
    assert status.ok and status.entries == 5 and status.broken_line is None
    records = [json.loads(x) for x in lines(log)]
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5]
    assert records[0]["prev"] == audit.GENESIS
    assert records[3]["prev"] == sha256_hex(lines(log)[2].rstrip(b"\n"))
    assert status.head == sha256_hex(lines(log)[-1].rstrip(b"\n"))


def test_append_is_deterministic_with_source_date_epoch(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1790000000")
    a, b = filled(tmp_path / "a"), filled(tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()


def test_edited_line_detected_at_that_line(tmp_path):
    log = filled(tmp_path)
    data = lines(log)
    data[2] = data[2].replace(b'"succes"', b'"refus"')
    log.write_bytes(b"".join(data))
    status = audit.verify(log)
    assert not status.ok and status.broken_line == 3 and "contenu modifié" in status.reason
    assert status.entries == 2


def test_edit_with_recomputed_hash_detected_at_next_line(tmp_path):
    log = filled(tmp_path)
    data = lines(log)
    record = json.loads(data[1])
    record["outcome"] = "refus"
    record["hash"] = sha256_hex(canonical_json({k: v for k, v in record.items() if k != "hash"}))
    data[1] = canonical_json(record) + b"\n"
    log.write_bytes(b"".join(data))
    status = audit.verify(log)
    assert status.broken_line == 3 and "chaînage rompu" in status.reason


def test_deleted_line_detected(tmp_path):
    log = filled(tmp_path)
    data = lines(log)
    del data[1]
    log.write_bytes(b"".join(data))
    status = audit.verify(log)
    assert status.broken_line == 2 and "supprimée, insérée ou déplacée" in status.reason


def test_reordered_lines_detected(tmp_path):
    log = filled(tmp_path)
    data = lines(log)
    data[3], data[4] = data[4], data[3]
    log.write_bytes(b"".join(data))
    assert audit.verify(log).broken_line == 4


def test_inserted_line_detected(tmp_path):
    log = filled(tmp_path)
    forged = filled(tmp_path / "other", 2)
    data = lines(log)
    data.insert(2, lines(forged)[1])
    log.write_bytes(b"".join(data))
    status = audit.verify(log)
    assert not status.ok and status.broken_line == 3


def test_reformatted_line_detected(tmp_path):
    log = filled(tmp_path)
    data = lines(log)
    data[0] = json.dumps(json.loads(data[0]), indent=1).replace("\n", " ").encode() + b"\n"
    log.write_bytes(b"".join(data))
    assert audit.verify(log).broken_line == 1


def test_torn_last_line_detected_and_append_refused(tmp_path):
    log = filled(tmp_path, 3)
    data = log.read_bytes()
    log.write_bytes(data[:-20])  # crash in the middle of the last write
    status = audit.verify(log)
    assert status.broken_line == 3 and "incomplète" in status.reason
    with pytest.raises(RefusalError, match="incomplète"):
        audit.append(log, {"event": "x"})
    assert log.read_bytes() == data[:-20]


def test_truncated_tail_detected_against_expected_head(tmp_path):
    log = filled(tmp_path, 4)
    head = audit.verify(log).head
    log.write_bytes(b"".join(lines(log)[:3]))
    assert audit.verify(log).ok  # a clean truncation needs an anchor...
    status = audit.verify(log, expected_head=head)
    assert not status.ok and "tronquée" in status.reason  # ...which the head provides


def test_reserved_fields_refused(tmp_path):
    with pytest.raises(Exception, match="réservés"):
        audit.append(tmp_path / "a.jsonl", {"seq": 9})


def test_cli_audit_verify_exit_codes(tmp_path):
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    log = filled(tmp_path, 3)
    ok = runner.invoke(app, ["audit", "verify", "--log", str(log)])
    assert ok.exit_code == 0 and "3 entrées" in ok.output
    data = lines(log)
    log.write_bytes(data[0] + data[2])
    bad = runner.invoke(app, ["audit", "verify", "--log", str(log)])
    assert isinstance(bad.exception, RefusalError) and bad.exception.exit_code != 0
    assert "ligne 2" in str(bad.exception) and "supprimée" in str(bad.exception)


def test_append_after_a_very_long_line_keeps_the_chain(tmp_path):
    log = tmp_path / "audit.jsonl"
    audit.append(log, {"event": "a"})
    audit.append(log, {"event": "big", "blob": "x" * 300_000})
    third = audit.append(log, {"event": "c"})
    assert third["seq"] == 3
    assert third["prev"] == sha256_hex(lines(log)[1].rstrip(b"\n"))
    assert audit.verify(log).ok


def test_any_single_byte_change_is_detected(tmp_path_factory):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    log = filled(tmp_path_factory.mktemp("prop"), 4)
    original = log.read_bytes()

    @settings(max_examples=60, deadline=None, derandomize=True)
    @given(pos=st.integers(0, len(original) - 1), value=st.integers(0, 255))
    def check(pos: int, value: int) -> None:
        if original[pos] == value:
            return
        tampered = bytearray(original)
        tampered[pos] = value
        log.write_bytes(bytes(tampered))
        status = audit.verify(log)
        assert not status.ok
        assert status.broken_line is not None and status.broken_line <= original[:pos].count(
            b"\n") + 2

    check()


def test_head_of_the_returned_record_is_the_head_verify_reports(tmp_path):
    log = filled(tmp_path, 3)
    record = audit.append(log, {"event": "central_run", "outcome": "succes"})
    status = audit.verify(log, expected_head=audit.head_of(record))
    assert status.ok and status.entries == 4 and status.head == audit.head_of(record)
    # the head BEFORE the entry no longer verifies as the tail: it must not be printed
    previous = audit.verify(log).head
    audit.append(log, {"event": "purge", "outcome": "supprime"})
    assert not audit.verify(log, expected_head=previous).ok


def test_require_intact_refuses_a_torn_log_and_accepts_a_new_one(tmp_path):
    assert audit.require_intact(tmp_path / "absent.jsonl").entries == 0
    log = filled(tmp_path, 2)
    assert audit.require_intact(log).entries == 2
    with open(log, "ab") as f:
        f.write(b'{"seq": 3')
    with pytest.raises(RefusalError, match="rien n'a été traité ni publié"):
        audit.require_intact(log)


def test_agency_log_is_private_chained_and_holds_no_content(tmp_path):
    work = tmp_path / "caf"
    data = work / "ingested.parquet"
    data.parent.mkdir()
    data.write_bytes(b"DUPONT;Jeanne;1850575123456")
    for event in audit.AGENCY_EVENTS:
        audit.record_agency(work, event, "caf", outputs=audit.file_facts(data, work / "absent"))
    log = audit.agency_log(work)
    assert oct(log.stat().st_mode & 0o777) == "0o600"
    status = audit.verify(log)
    assert status.ok and status.entries == len(audit.AGENCY_EVENTS)
    text = log.read_text()
    assert "DUPONT" not in text and "1850575123456" not in text
    first = json.loads(text.splitlines()[0])
    assert first["outputs"] == {"ingested.parquet": sha256_hex(data.read_bytes())}
    assert first["event"] == "ingestion" and first["agency"] == "caf"
    with pytest.raises(PipelineError, match="événement d'audit inconnu"):
        audit.record_agency(work, "autre", "caf")
