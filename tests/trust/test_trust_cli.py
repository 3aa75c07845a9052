"""The trust commands as a data officer runs them (in-process, same code path as the CLI)."""

from __future__ import annotations

import json
import stat

import typer
from trust_world import ROOT, full_world
from typer.testing import CliRunner

from pipeline.common.errors import RefusalError
from pipeline.trust.cli import register

runner = CliRunner()


def app() -> typer.Typer:
    a = typer.Typer()
    register(a)
    return a


def test_install_demo_then_fingerprint(tmp_path):
    dest = tmp_path / "out" / "caf" / "keys"
    r = runner.invoke(app(), ["keys", "install-demo", "--agency", "caf", "--dest", str(dest)])
    assert r.exit_code == 0, r.output
    key = dest / "linkage" / "demo-flers.key.json"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    r = runner.invoke(app(), ["keys", "fingerprint", "--keys-dir", str(dest), "--convention",
                              str(ROOT / "conventions" / "demo-flers.yaml")])
    assert r.exit_code == 0 and r.output.strip() == "bf7d8d3f77aa8cf5399681bbfdf949f1"


def test_convention_verify_and_refusal(tmp_path):
    conv = str(ROOT / "conventions" / "demo-flers.yaml")
    ok = runner.invoke(app(), ["convention", "verify", conv, "--today", "2026-11-22"])
    assert ok.exit_code == 0 and "valide" in ok.output
    late = runner.invoke(app(), ["convention", "verify", conv, "--today", "2028-02-01"])
    assert isinstance(late.exception, RefusalError) and "expirée" in str(late.exception)
    shown = runner.invoke(app(), ["convention", "show", conv])
    assert json.loads(shown.output)["signatures"]["operateur"] == "valide"


def test_gate_command_prints_verdict(tmp_path):
    w = full_world(tmp_path)
    r = runner.invoke(app(), ["gate", "--convention", str(w.convention),
                              "--export", f"caf={w.exports['caf']}",
                              "--export", f"cpam={w.exports['cpam'].parent}",
                              "--rule", "rsa_sans_css", "--today", "2026-11-22"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["verdict"] == "accepte"
    bad = runner.invoke(app(), ["gate", "--convention", str(w.convention),
                                "--export", f"caf={w.exports['caf']}", "--today", "2026-11-22"])
    assert isinstance(bad.exception, RefusalError) and "non reçu de : cpam" in str(bad.exception)


def test_full_ceremony_from_the_command_line(tmp_path):
    a = app()
    for party in ("caf", "cpam"):
        assert runner.invoke(a, ["keys", "generate", "--agency", party, "--dest",
                                 str(tmp_path / party)]).exit_code == 0
    r = runner.invoke(a, ["keys", "create-linkage", "--convention-id", "c-1", "--creator-keys",
                          str(tmp_path / "caf"), "--recipient", f"cpam={tmp_path / 'cpam'}",
                          "--out", str(tmp_path / "wrapped")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(a, ["keys", "unwrap", str(tmp_path / "wrapped" / "c-1.cpam.wrapped.json"),
                          "--keys-dir", str(tmp_path / "cpam")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "cpam" / "linkage" / "c-1.key.json").exists()
