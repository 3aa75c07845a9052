"""Central-run faults on real processes: a torn audit log publishes nothing, a kill between the
renames of the results folder is rolled back, the entry is written before publication, and two
runs never share the results folder."""

from __future__ import annotations

import json
import signal

from faults_world import cli, french_one_line, hold_lock, leftovers, tree_digest

from pipeline.shared.separation import DETECTION_AUDIT, DETECTION_OUT
from pipeline.trust import audit


def test_a_torn_audit_log_stops_the_run_before_any_work(world):
    log = world.out / "audit.jsonl"
    with open(log, "ab") as f:
        f.write(b'{"seq": 2, "event": "central_ru')  # a write cut by a crash
    torn = log.read_bytes()
    before = tree_digest(world.out / "central")
    proc = cli(*world.match(world.out, "--remplacer"))
    assert proc.returncode == 3, proc.stderr
    err = french_one_line(proc)
    assert "journal d'audit altéré" in err and "rien n'a été traité ni publié" in err
    assert tree_digest(world.out / "central") == before
    assert log.read_bytes() == torn
    assert leftovers(world.out) == []


def test_a_kill_between_the_renames_of_the_results_is_rolled_back(world):
    central = world.out / "central"
    before = tree_digest(central)
    proc = cli(*world.match(world.out, "--remplacer"), fault="kill:folder-swapped:central")
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not central.exists() and (world.out / ".central.old").is_dir()
    # the entry was appended before publication, and the log is whole
    log = world.out / "audit.jsonl"
    assert audit.verify(log).ok
    assert json.loads(log.read_text().splitlines()[-1])["outcome"] == "succes"
    again = cli(*world.match(world.out))  # recovers first, then refuses to overwrite
    assert "existe déjà" in french_one_line(again)
    assert tree_digest(central) == before
    assert leftovers(world.out) == []


def test_a_failure_after_the_audit_entry_publishes_nothing_and_is_logged(world):
    central, log = world.out / "central", world.out / "audit.jsonl"
    before = tree_digest(central)
    entries = audit.verify(log).entries
    proc = cli(*world.match(world.out, "--remplacer"), fault="enospc:audit-appended")
    assert proc.returncode == 4 and "disque plein" in french_one_line(proc)
    assert tree_digest(central) == before
    assert leftovers(world.out) == []
    status = audit.verify(log)
    assert status.ok and status.entries == entries + 2
    succes, echec = (json.loads(x) for x in log.read_text().splitlines()[-2:])
    assert succes["outcome"] == "succes" and "links.parquet" in succes["outputs"]
    assert echec["outcome"] == "echec" and echec["phase"] == "publication"
    assert "disque plein" in echec["reason"]


def test_a_detection_failure_after_its_audit_entry_publishes_nothing_and_is_logged(world):
    """The detecting operator's run: a full disk after its entry leaves its previous results
    and logs the failure in its own log."""
    results, log = world.out / DETECTION_OUT, world.out / DETECTION_AUDIT
    before = tree_digest(results)
    entries = audit.verify(log).entries
    proc = cli(*world.detecter(world.out, "--remplacer"), fault="enospc:audit-appended")
    assert proc.returncode == 4 and "disque plein" in french_one_line(proc)
    assert tree_digest(results) == before and "targets.parquet" in before
    assert leftovers(world.out) == []
    status = audit.verify(log)
    assert status.ok and status.entries == entries + 2
    succes, echec = (json.loads(x) for x in log.read_text().splitlines()[-2:])
    assert succes["outcome"] == "succes" and "targets.parquet" in succes["outputs"]
    assert echec["outcome"] == "echec" and echec["phase"] == "publication"


def test_two_central_runs_on_one_folder_cannot_interleave(world):
    central = world.out / "central"
    before = tree_digest(central)
    holder = hold_lock(central, 30)
    try:
        proc = cli(*world.match(world.out, "--remplacer"), NONRECOURS_LOCK_WAIT="0.5")
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 2
    assert "une autre exécution" in french_one_line(proc)
    assert tree_digest(central) == before
