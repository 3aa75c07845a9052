"""Errors a data officer can act on: which file, which line, which column, why.

Messages must never carry a raw value from an extract (a NIR, a name, a date of birth): they name
the place and the rule that failed, never the content.
"""

from __future__ import annotations

from pathlib import Path


class PipelineError(Exception):
    """A refusal or failure with a readable French-or-English message; the CLI exits non-zero."""

    exit_code = 2


class InputError(PipelineError):
    """Bad input: names the file, and the line and column when known."""

    def __init__(
        self,
        path: str | Path,
        reason: str,
        *,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.column = column
        self.reason = reason
        where = self.path
        if line is not None:
            where += f", ligne {line}"
        if column is not None:
            where += f", colonne « {column} »"
        super().__init__(f"{where} : {reason}")


class RefusalError(PipelineError):
    """The central run refuses to proceed (convention, manifest, key fingerprint, field, rule)."""

    exit_code = 3
