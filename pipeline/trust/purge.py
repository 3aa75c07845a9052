"""Retention: delete what the convention no longer allows to keep, centrally and at the agencies.

The convention fixes `retention_days`; pipeline/trust/purge.yaml lists what falls under it: the
central results and inbox, and at each agency the handles table, the named CCAS lists and their
feedback, the ingested tables (with their rejected lines) and the exports. The convention is only
parsed, not verified: an expired convention must still let data be purged. Each deletion is
recorded — in the central audit log for central outputs, in the agency's own log
(`<run root>/<agency>/audit.jsonl`) for its files — with the path (relative to the run root), its
age and the SHA-256 of what was deleted; no content is ever logged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from pathlib import Path
from typing import Any

import yaml

from pipeline.common.files import sha256_file
from pipeline.trust import audit
from pipeline.trust.convention import load_convention

POLICY = Path(__file__).with_name("purge.yaml")


def _policy() -> list[dict[str, str]]:
    return list(yaml.safe_load(POLICY.read_text("utf-8"))["targets"])


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _last_modified(path: Path) -> dt.date:
    stamps = [p.stat().st_mtime for p in _files(path)] or [path.stat().st_mtime]
    return dt.datetime.fromtimestamp(max(stamps), tz=dt.UTC).date()


def _digest(path: Path) -> str:
    """SHA-256 of a file, or of the sorted (relative path, SHA-256) list of a folder."""
    if path.is_file():
        return sha256_file(path)
    h = hashlib.sha256()
    for f in _files(path):
        h.update(f"{f.relative_to(path).as_posix()}\x1f{sha256_file(f)}\n".encode())
    return h.hexdigest()


def expired(run_root: Path, retention_days: int, today: dt.date) -> list[dict[str, Any]]:
    """Candidates older than the retention period, sorted by path (nothing is deleted)."""
    run_root = Path(run_root)
    found: dict[Path, dict[str, Any]] = {}
    for target in _policy():
        for path in sorted(run_root.glob(target["glob"])):
            if path in found or path.is_symlink():
                continue
            age = (today - _last_modified(path)).days
            if age > retention_days:
                found[path] = {"path": path, "kind": target["kind"], "age_days": age,
                               "side": target.get("side", "central")}
    return [found[p] for p in sorted(found)]


def purge(run_root: Path, convention: Path, today: dt.date, audit_log: Path,
          *, dry_run: bool = False) -> list[Path]:
    """Delete what is past retention, one audit entry per deletion; return the deleted paths."""
    conv = load_convention(convention)
    run_root = Path(run_root)
    deleted: list[Path] = []
    for item in expired(run_root, conv.retention_days, today):
        path: Path = item["path"]
        if dry_run:
            deleted.append(path)
            continue
        digest = _digest(path)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
        relative = path.relative_to(run_root)
        facts = {
            "convention": conv.id, "path": relative.as_posix(),
            "kind": item["kind"], "age_days": item["age_days"],
            "retention_days": conv.retention_days, "sha256": digest,
            "today": today.isoformat(),
        }
        if item["side"] == "agence":
            audit.record_agency(run_root / relative.parts[0], "purge", relative.parts[0], **facts)
        else:
            audit.append(audit_log, {"event": "purge", **facts, "outcome": "supprime"})
        deleted.append(path)
    return deleted
