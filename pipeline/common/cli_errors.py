"""Every way a command can fail, as one French line on stderr and a non-zero exit code.

Typer/Click print usage errors as an English box (« Usage: … Error: No such option »); an
unexpected exception prints a Python traceback that may carry a value from the data. The
top-level entry point (pipeline/cli.py `main`) runs the app in non-standalone mode and hands
every exception to `exit_code_for`, which prints one line and returns the code:

    2  bad usage (unknown option, missing option, bad value) or refused input (PipelineError)
    3  refusal of the central gate (RefusalError)
    4  system error (disk full, read-only folder, permission denied…)
    70 unexpected error (details only with NONRECOURS_DEBUG=1: they may hold data values)
"""

from __future__ import annotations

import errno
import os
import re
import sys
import traceback

from typer._click import exceptions as click_exc
from typer.exceptions import Abort

from pipeline.common.errors import PipelineError, os_error_message

DEBUG_ENV = "NONRECOURS_DEBUG"
SYSTEM_EXIT = 4
UNEXPECTED_EXIT = 70
_OS_ERROR_IN_TEXT = re.compile(r"os error (\d+)")


def _clean(text: str, limit: int = 200) -> str:
    """One line, no control byte, bounded: a message never spans or corrupts the terminal."""
    text = re.sub(r"[\x00-\x1f\x7f]+", " ", str(text)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _param_name(exc: click_exc.BadParameter) -> str:
    if exc.param_hint:
        hint = exc.param_hint
        return " / ".join(hint) if isinstance(hint, (list, tuple)) else str(hint)
    param = exc.param
    if param is None:
        return "paramètre"
    opts = getattr(param, "opts", None) or [param.name or "?"]
    return " / ".join(o for o in opts if o.startswith("--")) or opts[0]


def _help_hint(exc: click_exc.UsageError) -> str:
    path = exc.ctx.command_path if exc.ctx is not None else "python -m pipeline"
    return f" (aide : {path} --help)"


def _wrapped_errno(text: str) -> int | None:
    """The errno of a system error quoted inside a library's message ("os error 28",
    "No space left on device"), if any."""
    if (m := _OS_ERROR_IN_TEXT.search(text)) is not None:
        return int(m.group(1))
    for code in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
        if os.strerror(code) in text:
            return code
    return None


def usage_message(exc: click_exc.UsageError) -> str:
    """French one-liner for a Typer/Click usage error (never Click's English text)."""
    if isinstance(exc, click_exc.MissingParameter):
        kind = "argument" if getattr(exc.param, "param_type_name", "") == "argument" else "option"
        what = f"{kind} obligatoire manquant(e) : {_param_name(exc)}"
    elif isinstance(exc, click_exc.BadParameter):
        listed = re.search(r"is not one of (.*?)\.?$", exc.message or "")
        choices = re.findall(r"'([^']*)'", listed.group(1)) if listed else None
        value = re.search(r"'([^']*)'", exc.message or "")
        got = f" « {_clean(value.group(1), 60)} »" if value else ""
        what = f"valeur invalide pour {_param_name(exc)}{got}"
        if choices:
            what += " (valeurs possibles : " + ", ".join(str(c) for c in choices) + ")"
        elif "integer" in (exc.message or ""):
            what += " (nombre entier attendu)"
        elif "float" in (exc.message or ""):
            what += " (nombre attendu)"
    elif isinstance(exc, click_exc.NoSuchOption):
        what = f"option inconnue : {_clean(exc.option_name, 60)}"
        if exc.possibilities:
            what += " (vouliez-vous dire " + ", ".join(sorted(exc.possibilities)) + " ?)"
    elif isinstance(exc, click_exc.BadOptionUsage):
        what = f"l'option {_clean(exc.option_name, 60)} attend une valeur"
    elif (m := re.match(r"No such command '([^']*)'", exc.message or "")) is not None:
        what = f"commande inconnue « {_clean(m.group(1), 60)} »"
    elif (m := re.match(r"Got unexpected extra arguments? \((.*)\)", exc.message or "")):
        what = f"argument(s) en trop : {_clean(m.group(1), 80)}"
    elif "Missing command" in (exc.message or ""):
        what = "sous-commande manquante"
    else:
        what = "utilisation incorrecte de la commande"
    return what + _help_hint(exc)


def exit_code_for(exc: BaseException) -> int:
    """Print `exc` as one French line on stderr; return the process exit code."""
    if isinstance(exc, click_exc.NoArgsIsHelpError):
        return 2  # the help was printed when the error was built (Click's convention: exit 2)
    if isinstance(exc, click_exc.UsageError):
        code, message = 2, usage_message(exc)
    elif isinstance(exc, PipelineError):
        code, message = exc.exit_code, str(exc)
    elif isinstance(exc, OSError):
        code, message = SYSTEM_EXIT, os_error_message(exc)
    elif isinstance(exc, (KeyboardInterrupt, Abort)):
        code, message = 130, "interrompu par l'utilisateur ; les sorties précédentes sont intactes"
    elif (wrapped := _wrapped_errno(str(exc))) is not None:
        # polars / DuckDB / pyarrow wrap the system error in their own exception type
        code, message = SYSTEM_EXIT, os_error_message(OSError(wrapped, ""))
    else:
        code = UNEXPECTED_EXIT
        message = (f"erreur inattendue ({type(exc).__name__}) ; relancez avec {DEBUG_ENV}=1 "
                   "pour le détail technique")
    if os.environ.get(DEBUG_ENV) == "1":
        traceback.print_exception(exc, file=sys.stderr)
    print(f"ERREUR : {_clean(message, 2000)}", file=sys.stderr)
    return code
