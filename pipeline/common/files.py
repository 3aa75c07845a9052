"""File writing with two guarantees: nothing half-written, and private files stay private.

Every output goes through `atomic_path`: it is written under a temporary owner-only name in the
same folder, flushed to disk (fsync) and renamed into place only once complete, so a crash never
leaves a truncated file. A whole output folder goes through `staged_folder`: built in a sibling
staging folder, then swapped in by renames (the old folder is moved aside, never deleted before
the new one is in place). `recover` (run by `pipeline.common.outputs.exclusive_output` at the start
of every run) puts back a folder whose swap was interrupted and removes any temporary file or
staging folder a killed run left behind. Key material and agency-local tables go through
`write_private` / `private_dir` (owner-only permissions) and are read back through
`check_private`, which refuses a file that others can read.

Fault injection (tests/faults only): `NONRECOURS_FAULT=<action>:<point>[:<file name>]` makes the
process act at a named point of this module (or of a caller using `fault_point`): `kill` sends
itself SIGKILL (a real crash), `enospc` / `erofs` / `eacces` raise that OSError. Points:
`file-written` (temporary file complete, before its rename), `folder-staged` (staging complete,
before the swap), `folder-swapped` (old folder moved aside, new one not yet in place) and
`audit-appended` (central run entry written, before publication). Unset, it costs one lookup.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import signal
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pipeline.common.errors import PipelineError

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
FAULT_ENV = "NONRECOURS_FAULT"
_FAULT_ERRNO = {"enospc": errno.ENOSPC, "erofs": errno.EROFS, "eacces": errno.EACCES}
STAGING_SUFFIX = ".partial"
ASIDE_SUFFIX = ".old"
TEMP_SUFFIX = ".tmp"
TEMP_DEPTH = 3  # <folder>/x.tmp, <folder>/export/x.tmp, <folder>/keys/private/x.tmp
_TEMP_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")  # tempfile.mkstemp(prefix=".<name>.")


def fault_point(point: str, target: str | Path | None = None) -> None:
    """Crash or fail here if NONRECOURS_FAULT names this point (see the module docstring)."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    action, _, rest = spec.partition(":")
    name, _, only = rest.partition(":")
    if name != point or (only and (target is None or Path(target).name != only)):
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if action in _FAULT_ERRNO:
        code = _FAULT_ERRNO[action]
        raise OSError(code, os.strerror(code), str(target or point))


def _fsync_path(path: Path) -> None:
    """Flush a file's or a folder's entry to disk (a folder fsync makes a rename durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | Path, *, private: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to `target`; rename it onto `target` if the block succeeds.

    The temporary file is created owner-only (mkstemp) so a crash never leaves personal data
    readable by others; it is fsynced before the rename, and the folder after it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX,
                                    dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        _fsync_path(tmp)
        fault_point("file-written", target)
        os.chmod(tmp, PRIVATE_FILE_MODE if private else 0o644)
        os.replace(tmp, target)
        _fsync_path(target.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(target: str | Path, data: bytes, *, private: bool = False) -> Path:
    with atomic_path(target, private=private) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text(target: str | Path, text: str, *, private: bool = False) -> Path:
    return write_bytes(target, text.encode("utf-8"), private=private)


def write_private(target: str | Path, data: bytes) -> Path:
    """Write key material or an agency-local table, owner-only (0600), atomically."""
    return write_bytes(target, data, private=True)


def private_dir(path: str | Path) -> Path:
    """Create (or tighten) a folder that only its owner can enter (0700)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, PRIVATE_DIR_MODE)
    return path


def _sibling(target: Path, suffix: str) -> Path:
    return target.with_name(f".{target.name}{suffix}")


def recover(folder: str | Path) -> list[Path]:
    """Undo what a killed run left in or next to `folder`; return what was removed or restored.

    - `.<name>.old` (beside `folder` or inside it) without `<name>`: the crash hit between the
      two renames of a swap, so the previous outputs are put back; with `<name>` present the
      swap had finished: drop the old copy.
    - `.<name>.partial` (an unfinished staging folder) beside or in `folder`, and every
      temporary file of `atomic_path` under it (a rename that never happened, possibly holding
      personal data): removed.
    """
    folder = Path(folder)
    touched: list[Path] = []
    asides = [_sibling(folder, ASIDE_SUFFIX)]
    if folder.is_dir():  # a sub-folder swapped by the same run (e.g. <agency>/export)
        asides += sorted(folder.glob(f".*{ASIDE_SUFFIX}"))
    for aside in asides:
        if not aside.is_dir():
            continue
        original = aside.with_name(aside.name[1:-len(ASIDE_SUFFIX)])
        if original.exists():
            shutil.rmtree(aside)
        else:
            aside.rename(original)
        touched.append(aside)
    staging = _sibling(folder, STAGING_SUFFIX)
    if staging.exists():
        shutil.rmtree(staging)
        touched.append(staging)
    if folder.is_dir():
        # only names this module creates, and only as deep as the outputs go (a folder given
        # by mistake, such as a home folder, is not searched through)
        for depth in range(TEMP_DEPTH):
            for tmp in sorted(folder.glob("*/" * depth + f".*{TEMP_SUFFIX}")):
                if _TEMP_NAME.fullmatch(tmp.name) and tmp.is_file() and not tmp.is_symlink():
                    tmp.unlink()
                    touched.append(tmp)
        for sub in sorted(folder.glob(f".*{STAGING_SUFFIX}")):
            if sub.is_dir() and not sub.is_symlink():
                shutil.rmtree(sub)
                touched.append(sub)
    return touched


def publish(staging: Path, target: Path) -> Path:
    """Swap a complete staging folder in: old aside, new in, old removed (never the reverse)."""
    fault_point("folder-staged", target)
    aside = _sibling(target, ASIDE_SUFFIX)
    if aside.exists():
        shutil.rmtree(aside)
    if target.exists():
        target.rename(aside)
        fault_point("folder-swapped", target)
    staging.rename(target)
    _fsync_path(target.parent)
    shutil.rmtree(aside, ignore_errors=True)
    return target


@contextlib.contextmanager
def staged_folder(target: str | Path, *, private: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder beside `target`; publish it onto `target` on success.

    On any failure the staging folder is removed and `target` is left exactly as it was."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover(target)
    staging = _sibling(target, STAGING_SUFFIX)
    staging.mkdir(mode=PRIVATE_DIR_MODE)
    try:
        yield staging
        os.chmod(staging, PRIVATE_DIR_MODE if private else 0o755)
        for path in sorted(staging.rglob("*")):
            if path.is_file():
                _fsync_path(path)
        _fsync_path(staging)
        publish(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def check_private(path: str | Path) -> Path:
    """Refuse a secret or local table that group or others can read (like ssh does)."""
    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{path} : fichier introuvable")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise PipelineError(
            f"{path} : permissions {oct(mode)} trop ouvertes ; ce fichier doit être lisible par "
            f"son seul propriétaire (chmod 600 {path})"
        )
    return path


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
