"""Fixtures shared by every stage's tests."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from collections.abc import Callable

import pytest


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess]:
    """Run the real `nonrecours` entry point in-process and capture its exit code and output.

    In-process because a subprocess costs seconds of imports per call; the entry point is the
    same `main()` the chain's processes run, so exit codes and messages are the real ones.
    """
    from pipeline.cli import main

    def invoke(*args: str) -> subprocess.CompletedProcess:
        out, err = io.StringIO(), io.StringIO()
        argv = sys.argv
        sys.argv = ["nonrecours", *args]
        code = 0
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                main()
        except SystemExit as exc:
            code = int(exc.code or 0)
        finally:
            sys.argv = argv
        return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())

    return invoke
