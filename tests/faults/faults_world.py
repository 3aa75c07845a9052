"""Helpers of the fault tests: run a command in its own process, compare folders, hold a lock.

The faults are real: the commands run as separate processes (`python -m pipeline ...`) and are
killed with SIGKILL, or made to fail with a system error, at a named point through the
NONRECOURS_FAULT hook of pipeline/common/files.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pipeline.shared.separation import (
    DETECTION_AUDIT,
    DETECTION_DIR,
    DETECTION_OUT,
    HANDOFF_DIR,
    SHARES_DIR,
)

ROOT = Path(__file__).resolve().parents[2]
CONVENTION = ROOT / "conventions" / "demo-flers.yaml"
TODAY = "2026-11-22"


@dataclass(frozen=True)
class World:
    dataset: Path
    out: Path

    def caf_ingest(self, work: Path, *extra: str) -> list[str]:
        return ["ingest", "--agency", "caf", "--input",
                str(self.dataset / "raw" / "caf_extract.csv"), "--out", str(work), *extra]

    def caf_pseudonymise(self, work: Path, *extra: str) -> list[str]:
        return ["pseudonymise", "--agency", "caf", "--workdir", str(work), "--keys",
                str(work / "keys"), "--convention", str(CONVENTION), "--territory",
                str(self.dataset / "territory" / "iris_quartiers.csv"), "--seed", "1", *extra]

    def match(self, out: Path, *extra: str) -> list[str]:
        return ["match", "--convention", str(CONVENTION), "--caf", str(out / "transfer" / "caf"),
                "--cpam", str(out / "transfer" / "cpam"), "--out", str(out / "central"),
                "--audit-log", str(out / "audit.jsonl"), "--today", TODAY, *extra]


    def detecter(self, out: Path, *extra: str) -> list[str]:
        """The detecting operator's command on its inbox, as the chain runs it."""
        inbox = out / "transfer" / DETECTION_DIR
        return ["detecter", "--convention", str(CONVENTION),
                "--detection", f"caf={inbox / 'caf'}", "--detection", f"cpam={inbox / 'cpam'}",
                "--separation", str(inbox / HANDOFF_DIR), "--parts", str(inbox / SHARES_DIR),
                "--out", str(out / DETECTION_OUT), "--audit-log", str(out / DETECTION_AUDIT),
                "--today", TODAY, *extra]


def cli(*args: str, fault: str | None = None, **env: str) -> subprocess.CompletedProcess:
    """Run one command in its own process (a fault, if any, through NONRECOURS_FAULT)."""
    full = {**os.environ, "NONRECOURS_QUIET": "1", **env}
    full.pop("NONRECOURS_FAULT", None)
    full.pop("NONRECOURS_DEBUG", None)
    if fault:
        full["NONRECOURS_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, env=full,
                          capture_output=True, text=True, check=False)


def tree_digest(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative path -> bytes), hidden files included."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(folder: Path) -> list[Path]:
    """Temporary files and staging folders a killed run could leave behind."""
    return sorted(p for p in folder.rglob("*")
                  if p.name.endswith((".tmp", ".partial", ".old")))


def french_one_line(proc) -> str:
    err = proc.stderr.strip()
    assert "Traceback" not in err and "Error:" not in err, err
    assert len(err.splitlines()) == 1 and err.startswith("ERREUR : "), err
    return err


def hold_lock(folder, seconds: float) -> subprocess.Popen:
    """Another process holding the folder's lock, as a concurrent run would."""
    code = ("import sys, time\nfrom pipeline.common.outputs import folder_lock\n"
            f"with folder_lock({str(folder)!r}):\n    print('pris', flush=True)\n"
            f"    time.sleep({seconds})\n")
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "pris"
    return holder
