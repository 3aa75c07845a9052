"""Append-only, hash-chained audit logs (JSON lines): the central one (runs, refusals, purges)
and one per agency (ingest, export, re-identification, feedback, purge).

Each line is the canonical JSON of one record: `seq` (1, 2, ...), `time`, `prev` (SHA-256 of the
previous line's bytes, 64 zeros for the first), the entry's own fields, and `hash` (SHA-256 of the
record without `hash`). Editing a line breaks its own hash (or, if recomputed, the next line's
`prev`); deleting, inserting or reordering lines breaks `seq` and `prev`; a line cut short by a
crash is not valid JSON or lacks its final newline. Truncating the tail is only detectable against
a head hash kept elsewhere (the report prints it): pass it as `expected_head`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.common.errors import PipelineError, RefusalError
from pipeline.trust.canonical import canonical_json, now_utc, sha256_hex, utc_iso

GENESIS = "0" * 64
RESERVED = ("seq", "time", "prev", "hash")


@dataclasses.dataclass(frozen=True)
class AuditStatus:
    ok: bool
    entries: int
    head: str  # hash of the last valid line (GENESIS when empty)
    broken_line: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _record_hash(record: dict[str, Any]) -> str:
    return sha256_hex(canonical_json({k: v for k, v in record.items() if k != "hash"}))


def _line_hash(line: bytes) -> str:
    return sha256_hex(line.rstrip(b"\n"))


def _last_line(fd: int) -> bytes:
    """The file's last line (with its newline if any), read backwards from the end."""
    size = os.fstat(fd).st_size
    chunk, data = 1 << 16, b""
    while True:
        start = max(0, size - chunk)
        data = os.pread(fd, size - start, start)
        cut = data.rfind(b"\n", 0, len(data) - 1)
        if cut >= 0 or start == 0:
            return data[cut + 1:]
        chunk *= 4


def _tail(log: Path, fd: int) -> tuple[int, str]:
    """(seq, hash-of-line) of the last line; refuses to extend a log whose last line is torn."""
    last = _last_line(fd)
    if not last:
        return 0, GENESIS
    if not last.endswith(b"\n"):
        raise RefusalError(f"{log} : dernière ligne incomplète (écriture interrompue) ; journal "
                           "d'audit à examiner avant tout ajout (« audit verify »)")
    last = last[:-1]
    try:
        record = json.loads(last)
        return int(record["seq"]), _line_hash(last)
    except (ValueError, KeyError, TypeError) as exc:
        raise RefusalError(f"{log} : dernière ligne illisible ; journal d'audit à examiner") \
            from exc


def head_of(record: dict[str, Any]) -> str:
    """The head `verify` reports once `record` is the log's last line (hash of its line)."""
    return sha256_hex(canonical_json(record))


def append(log: Path, entry: dict[str, Any], *, private: bool = False) -> dict[str, Any]:
    """Append one entry (whole line, single write, fsync) under an exclusive lock; return it.

    `private` keeps the log owner-only (0600): an agency's log names its local files."""
    clash = [k for k in RESERVED if k in entry]
    if clash:
        raise PipelineError(f"champs réservés au journal d'audit : {', '.join(clash)}")
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600 if private else 0o644)
    try:
        if private:
            os.fchmod(fd, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        seq, prev = _tail(log, fd)
        record = {"seq": seq + 1, "time": utc_iso(now_utc()), "prev": prev, **entry}
        try:
            canonical_json(record)
        except TypeError as exc:
            raise PipelineError(f"entrée d'audit non sérialisable : {exc}") from exc
        record["hash"] = _record_hash(record)
        line = canonical_json(record) + b"\n"
        written = os.write(fd, line)
        if written != len(line):
            raise PipelineError(f"{log} : écriture partielle dans le journal d'audit")
        os.fsync(fd)
    finally:
        os.close(fd)  # releases the lock
    return record


def verify(log: Path, expected_head: str | None = None) -> AuditStatus:
    """Walk the chain; report the first line (1-based) edited, removed, inserted or moved."""
    log = Path(log)
    if not log.exists():
        return AuditStatus(ok=False, entries=0, head=GENESIS, broken_line=None,
                           reason=f"{log} : journal d'audit introuvable")
    data = log.read_bytes()
    lines = data.split(b"\n")
    torn = not data.endswith(b"\n") and data != b""
    if lines and lines[-1] == b"":
        lines.pop()
    prev, count = GENESIS, 0

    def broken(n: int, why: str) -> AuditStatus:
        return AuditStatus(ok=False, entries=count, head=prev, broken_line=n,
                           reason=f"{log}, ligne {n} : {why}")

    for n, raw in enumerate(lines, start=1):
        if torn and n == len(lines):
            return broken(n, "ligne incomplète (écriture interrompue ou tronquée)")
        try:
            record = json.loads(raw)
            if not isinstance(record, dict):
                raise ValueError
        except ValueError:
            return broken(n, "ligne illisible (JSON invalide)")
        if canonical_json(record) != raw:
            return broken(n, "ligne réécrite (forme canonique modifiée)")
        if record.get("hash") != _record_hash(record):
            return broken(n, "contenu modifié (l'empreinte de la ligne ne correspond plus)")
        if record.get("seq") != n:
            return broken(n, f"numéro d'ordre {record.get('seq')} au lieu de {n} : ligne "
                             "supprimée, insérée ou déplacée")
        if record.get("prev") != prev:
            return broken(n, "chaînage rompu : la ligne précédente a été modifiée, supprimée "
                             "ou remplacée")
        prev = _line_hash(raw)
        count += 1
    if expected_head is not None and expected_head != prev:
        return AuditStatus(ok=False, entries=count, head=prev, broken_line=count + 1,
                           reason=f"{log} : la dernière ligne ne correspond pas à l'empreinte "
                                  "attendue (fin du journal tronquée ou remplacée)")
    return AuditStatus(ok=True, entries=count, head=prev)


def require_intact(log: Path) -> AuditStatus:
    """Refuse to start a run on a log that does not verify (an absent log is a new one)."""
    log = Path(log)
    if not log.exists():
        return AuditStatus(ok=True, entries=0, head=GENESIS)
    status = verify(log)
    if not status.ok:
        raise RefusalError(f"journal d'audit altéré — {status.reason} ; rien n'a été traité ni "
                           "publié (examinez-le avec « audit verify »)")
    return status


# --- agency side ----------------------------------------------------------------------------
# Each agency keeps its own chained log in its working folder (out/<agency>/audit.jsonl, 0600):
# what it ingested, exported, re-identified, read back from the CCAS and purged. Entries hold
# file names, SHA-256 digests and counts, never a value from the data.

AGENCY_LOG = "audit.jsonl"
AGENCY_EVENTS = ("ingestion", "export", "residu", "parts", "reidentification", "retours",
                 "purge")


def agency_log(workdir: Path) -> Path:
    return Path(workdir) / AGENCY_LOG


@contextlib.contextmanager
def agency_run(workdir: Path, *, replace: bool, outputs: list[Path]) -> Iterator[Path]:
    """Open an agency step: lock its folder, repair a killed run's leftovers, refuse existing
    `outputs` unless `replace`, and refuse to start on a torn or altered agency log."""
    from pipeline.common.outputs import exclusive_output

    with exclusive_output(workdir, replace=replace, outputs=outputs) as folder:
        require_intact(agency_log(folder))
        yield folder


def record_agency(workdir: Path, event: str, agency: str, **fields: Any) -> dict[str, Any]:
    """Append one agency-side event to `<workdir>/audit.jsonl` (owner-only); return the record."""
    if event not in AGENCY_EVENTS:
        raise PipelineError(f"événement d'audit inconnu : « {event} »")
    from pipeline import __version__

    entry = {"event": event, "agency": agency, **fields,
             "versions": {"nonrecours": __version__}, "outcome": "succes"}
    return append(agency_log(workdir), entry, private=True)


def file_facts(*paths: Path) -> dict[str, str]:
    """{file name: SHA-256} of the files that exist, for an audit entry (no content)."""
    from pipeline.common.files import sha256_file

    return {Path(p).name: sha256_file(p) for p in paths if p and Path(p).is_file()}
