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


# What a data officer reads when the system refuses a write or a read (one line, French).
_OS_REASONS = {
    "ENOSPC": "disque plein (plus d'espace libre)",
    "EDQUOT": "quota disque dépassé",
    "EROFS": "système de fichiers en lecture seule",
    "EACCES": "permission refusée",
    "EPERM": "opération non permise",
    "ENOENT": "fichier ou dossier introuvable",
    "ENOTDIR": "un élément du chemin n'est pas un dossier",
    "EISDIR": "un dossier se trouve là où un fichier est attendu",
    "EEXIST": "existe déjà",
    "ENOTEMPTY": "dossier non vide",
    "EMFILE": "trop de fichiers ouverts",
    "EIO": "erreur d'entrée-sortie du disque",
}
_KEEP = " ; les sorties précédentes sont intactes"


def os_error_message(exc: OSError) -> str:
    """One French line for a system error: the path, the cause, what happened to the outputs."""
    import errno as _errno

    name = _errno.errorcode.get(exc.errno or 0, "")
    reason = _OS_REASONS.get(name, f"erreur système {name or exc.errno or type(exc).__name__}")
    if name == "EEXIST" and exc.filename and Path(exc.filename).is_file():
        reason = "un fichier existe là où un dossier est attendu (ce n'est pas un dossier)"
    where = exc.filename or ""
    if exc.filename2:
        where += f" -> {exc.filename2}"
    hint = {
        "ENOSPC": " ; libérez de la place puis relancez",
        "EDQUOT": " ; libérez de la place puis relancez",
        "EROFS": " ; choisissez un dossier de sortie accessible en écriture",
        "EACCES": " ; vérifiez les droits du compte sur ce dossier",
        "EPERM": " ; vérifiez les droits du compte sur ce dossier",
    }.get(name, "")
    return f"{where} : {reason}{hint}{_KEEP}" if where else f"{reason}{hint}{_KEEP}"
