"""Agency-side faults, on real processes: a kill at a rename, between the renames of a folder
swap, a full disk, a read-only folder, a refused permission, two runs on one folder."""

from __future__ import annotations

import os
import signal
import stat
import time

import pytest
from faults_world import ROOT, cli, french_one_line, hold_lock, leftovers, tree_digest

from pipeline.shared.separation import DETECTION_OUT

KILLED = -signal.SIGKILL


def test_kill_at_rename_leaves_only_a_private_temp_that_the_rerun_removes(world):
    work = world.out / "caf"
    before = (work / "ingested.parquet").read_bytes()
    proc = cli(*world.caf_ingest(work, "--remplacer"),
               fault="kill:file-written:ingested.parquet")
    assert proc.returncode == KILLED, proc.stderr
    temps = list(work.glob(".ingested.parquet.*.tmp"))
    assert len(temps) == 1, "the kill must hit with the temporary file complete"
    assert stat.S_IMODE(temps[0].stat().st_mode) == 0o600  # personal data: owner-only
    assert (work / "ingested.parquet").read_bytes() == before  # never half-replaced
    rerun = cli(*world.caf_ingest(work, "--remplacer"))
    assert rerun.returncode == 0, rerun.stderr
    assert leftovers(work) == []
    assert (work / "ingested.parquet").read_bytes() == before  # same input, same bytes


def test_kill_between_the_renames_of_a_folder_swap_is_rolled_back(world):
    work = world.out / "caf"
    before = tree_digest(work / "export")
    proc = cli(*world.caf_pseudonymise(work, "--remplacer"), fault="kill:folder-swapped:export")
    assert proc.returncode == KILLED, proc.stderr
    assert not (work / "export").exists() and (work / ".export.old").is_dir()
    # the next run on this folder first puts the previous export back, then refuses to
    # overwrite it without --remplacer
    again = cli(*world.caf_pseudonymise(work))
    assert "existe déjà" in french_one_line(again)
    assert tree_digest(work / "export") == before
    assert leftovers(work) == []


def test_kill_before_the_swap_keeps_the_previous_lists(world):
    work = world.out / "caf"
    before = tree_digest(work / "listes")
    argv = ["reidentify", "--agency", "caf", "--targets",
            str(world.out / DETECTION_OUT / "targets.parquet"), "--workdir", str(work),
            "--out", str(work / "listes"), "--convention",
            str(ROOT / "conventions" / "demo-flers.yaml"), "--run-date", "2026-11-22",
            "--sans-historique", "--remplacer"]
    proc = cli(*argv, fault="kill:folder-staged:listes")
    assert proc.returncode == KILLED, proc.stderr
    staging = work / ".listes.partial"
    assert staging.is_dir() and stat.S_IMODE(staging.stat().st_mode) == 0o700
    assert tree_digest(work / "listes") == before
    rerun = cli(*argv)
    assert rerun.returncode == 0, rerun.stderr
    assert leftovers(work) == []


@pytest.mark.parametrize(("fault", "words"), [
    ("enospc", "disque plein"),
    ("erofs", "lecture seule"),
    ("eacces", "permission refusée"),
])
def test_system_errors_are_one_french_line_and_keep_previous_outputs(world, fault, words):
    work = world.out / "caf"
    before = tree_digest(work)
    proc = cli(*world.caf_ingest(work, "--remplacer"), fault=f"{fault}:file-written")
    assert proc.returncode == 4, proc.stderr
    err = french_one_line(proc)
    assert words in err and "intactes" in err
    after = tree_digest(work)
    assert after == before  # outputs and the agency's audit log untouched
    assert leftovers(work) == []


def test_a_full_disk_while_publishing_an_export_keeps_the_previous_export(world):
    work = world.out / "caf"
    before = tree_digest(work / "export")
    proc = cli(*world.caf_pseudonymise(work, "--remplacer"),
               fault="enospc:file-written:caf.manifest.json")
    assert proc.returncode == 4 and "disque plein" in french_one_line(proc)
    assert tree_digest(work / "export") == before
    assert leftovers(work) == []


def test_an_output_folder_under_a_file_is_a_french_system_error(world, tmp_path):
    blocker = tmp_path / "pas_un_dossier"
    blocker.write_text("x")
    proc = cli(*world.caf_ingest(blocker / "caf"))
    assert proc.returncode == 4
    assert "pas un dossier" in french_one_line(proc)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_a_read_only_folder_is_refused_in_french(world):
    work = world.out / "caf"
    before = tree_digest(work)
    os.chmod(work, 0o500)
    try:
        proc = cli(*world.caf_ingest(work, "--remplacer"))
    finally:
        os.chmod(work, 0o700)
    assert proc.returncode == 4 and "permission refusée" in french_one_line(proc)
    assert tree_digest(work) == before


def test_a_second_run_on_a_locked_folder_refuses_clearly(world):
    work = world.out / "caf"
    before = tree_digest(work)
    holder = hold_lock(work, 30)
    try:
        t0 = time.monotonic()
        proc = cli(*world.caf_ingest(work, "--remplacer"), NONRECOURS_LOCK_WAIT="0.5")
        assert time.monotonic() - t0 < 25
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 2
    assert "une autre exécution utilise déjà ce dossier" in french_one_line(proc)
    assert tree_digest(work) == before


def test_a_second_run_waits_for_the_first_within_the_timeout(world):
    work = world.out / "caf"
    holder = hold_lock(work, 1.5)
    try:
        proc = cli(*world.caf_ingest(work, "--remplacer"), NONRECOURS_LOCK_WAIT="60")
    finally:
        holder.wait()
    assert proc.returncode == 0, proc.stderr


def test_an_existing_output_is_refused_without_remplacer(world):
    work = world.out / "caf"
    before = tree_digest(work)
    proc = cli(*world.caf_ingest(work))
    assert proc.returncode == 2
    err = french_one_line(proc)
    assert "ingested.parquet existe déjà" in err and "--remplacer" in err
    assert tree_digest(work) == before


def test_a_torn_agency_log_stops_the_agency_step(world):
    work = world.out / "caf"
    with open(work / "audit.jsonl", "ab") as f:
        f.write(b'{"seq": 9, "event": "expo')
    before = tree_digest(work)
    proc = cli(*world.caf_pseudonymise(work, "--remplacer"))
    assert proc.returncode == 3
    assert "journal d'audit altéré" in french_one_line(proc)
    assert tree_digest(work) == before
