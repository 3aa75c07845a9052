"""File writing with two guarantees: nothing half-written, and private files stay private.

Every output goes through `atomic_path`: it is written under a temporary name in the same folder
and renamed into place only once complete, so a crash never leaves a truncated file. Key material
and agency-local tables go through `write_private` / `private_dir` (owner-only permissions) and
are read back through `check_private`, which refuses a file that others can read.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pipeline.common.errors import PipelineError

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


@contextlib.contextmanager
def atomic_path(target: str | Path, *, private: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to `target`; rename it onto `target` if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, PRIVATE_FILE_MODE if private else 0o644)
        os.replace(tmp, target)
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
