"""Every command, given wrong arguments, fails with one French line: no traceback, no English
usage box, a non-zero exit code. The command list is read from the app itself, so a command
added later is covered without editing this file."""

from __future__ import annotations

import enum
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from pipeline.cli import app, main

ROOT = Path(__file__).resolve().parents[2]
ENGLISH = ("Usage:", "Error:", "Traceback", "Invalid value", "Missing option", "No such option",
           "Try '")


def leaf_commands() -> list[tuple[str, ...]]:
    """Every runnable command path of the app (groups expanded)."""
    root = typer.main.get_command(app)

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in sorted(subs.items()):
                yield from walk(sub, (*path, name))
        else:
            yield path

    return list(walk(root, ()))


def params_of(path: tuple[str, ...]):
    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    return cmd.params


COMMANDS = leaf_commands()


def run_main(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    code = exc.value.code
    return (code if isinstance(code, int) else 0), capsys.readouterr().err


def assert_french_one_liner(code: int, err: str) -> None:
    assert code != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "no message"
    last = lines[-1]
    assert last.startswith("ERREUR : "), err
    for word in ENGLISH:
        assert word not in err, (word, err)


def test_the_app_has_the_commands_of_every_stage():
    names = {" ".join(c) for c in COMMANDS}
    for expected in ("ingest", "pseudonymise", "match", "reidentify", "feedback load",
                     "audit verify", "purge", "keys generate", "run", "synth", "link", "detecter",
                     "parts"):
        assert expected in names


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_unknown_option_is_a_french_one_liner(command, capsys):
    code, err = run_main([*command, "--option-inexistante"], capsys)
    assert code == 2
    assert_french_one_liner(code, err)
    assert "option inconnue : --option-inexistante" in err


@pytest.mark.parametrize(
    "command", [c for c in COMMANDS if any(p.required for p in params_of(c))], ids=" ".join)
def test_missing_required_option_is_named_in_french(command, capsys):
    code, err = run_main(list(command), capsys)
    assert_french_one_liner(code, err)
    assert "obligatoire manquant" in err
    first = next(p for p in params_of(command) if p.required)
    assert (first.opts[0] if first.opts else first.name) in err or first.name.upper() in err


def kind_of(p) -> str:
    annotation = p.type_descriptor.annotation
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "choice"
    return {int: "integer", float: "float"}.get(annotation, "")


def _bad_value_cases():
    for command in COMMANDS:
        for p in params_of(command):
            if p.opts and p.opts[0].startswith("--") and kind_of(p):
                yield command, p.opts[0]


@pytest.mark.parametrize("case", list(_bad_value_cases()), ids=lambda c: " ".join(c[0]) + c[1])
def test_value_of_the_wrong_type_is_refused_in_french(case, capsys):
    command, option = case
    code, err = run_main([*command, option, "pas-une-valeur"], capsys)
    assert code == 2
    assert_french_one_liner(code, err)
    assert f"valeur invalide pour {option}" in err


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_unusable_paths_fail_in_french_without_traceback(command, tmp_path, capsys, monkeypatch):
    """Every required value filled, paths pointing below a regular file (cannot be read nor
    created): the command must refuse with its own French line, never crash."""
    monkeypatch.chdir(tmp_path)
    blocker = tmp_path / "fichier"
    blocker.write_text("x")
    bad = str(blocker / "absent")
    argv = list(command)
    params = params_of(command)
    if not any(p.required for p in params) and command not in (("purge",), ("audit", "verify")):
        pytest.skip("no required value; covered by the other cases")
    for p in params:
        if not p.required and p.name not in ("log", "run_root", "audit_log"):
            continue
        kind = kind_of(p)
        value = {"integer": "1", "float": "1.0"}.get(kind, bad)
        if kind == "choice":
            value = next(iter(p.type_descriptor.annotation)).value
        if p.name in ("agency",) and kind != "choice":
            value = "caf"
        if p.opts and p.opts[0].startswith("-"):
            argv += [p.opts[0], value]
        else:
            argv.append(value)
    code, err = run_main(argv, capsys)
    assert_french_one_liner(code, err)


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "NONRECOURS_QUIET": "1"}
    env.pop("NONRECOURS_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False)


@pytest.mark.parametrize("argv", [
    ["match", "--convention", "c.yaml", "--caf", "a", "--cpam", "b", "--today", "01/12/2026"],
    ["ingest", "--agency", "mdph", "--input", "x.csv"],
    ["ingest", "--input", "x.csv"],
    ["reidentify", "--agency", "caf", "--run-date", "2026-13-45"],
    ["commande-inconnue"],
], ids=["today-fr-format", "wrong-agency", "missing-agency", "bad-run-date", "no-command"])
def test_real_process_prints_one_french_line(argv, tmp_path):
    proc = _cli(*argv, cwd=tmp_path)
    assert proc.returncode not in (0, 1), proc.stderr  # 1 would be Python's own crash code
    assert_french_one_liner(proc.returncode, proc.stderr)
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_today_in_french_format_says_which_format_is_expected(capsys):
    code, err = run_main(["match", "--convention", "c", "--caf", "a", "--cpam", "b",
                          "--today", "01/12/2026"], capsys)
    assert code == 2 and "AAAA-MM-JJ" in err and "--today" in err


def test_unexpected_error_hides_details_unless_debug(monkeypatch, capsys):
    """An unforeseen exception may carry a data value: one generic line, details on demand."""
    from pipeline.common.cli_errors import UNEXPECTED_EXIT, exit_code_for

    secret = "DUPONT Jeanne 1 85 05 75 123 456"
    code = exit_code_for(ValueError(secret))
    err = capsys.readouterr().err
    assert code == UNEXPECTED_EXIT and secret not in err and "NONRECOURS_DEBUG=1" in err
    monkeypatch.setenv("NONRECOURS_DEBUG", "1")
    exit_code_for(ValueError(secret))
    assert secret in capsys.readouterr().err


def test_system_error_wrapped_by_a_library_is_recognised(capsys):
    from pipeline.common.cli_errors import SYSTEM_EXIT, exit_code_for

    code = exit_code_for(RuntimeError("failed to write: No space left on device (os error 28)"))
    assert code == SYSTEM_EXIT and "disque plein" in capsys.readouterr().err
    code = exit_code_for(RuntimeError("IO Error: Could not write file: Read-only file system"))
    assert code == SYSTEM_EXIT and "lecture seule" in capsys.readouterr().err
