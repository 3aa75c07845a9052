"""Atomic files and folders, recovery after a killed run, locks, refusals (in-process; the
same guarantees on killed processes are in tests/faults)."""

from __future__ import annotations

import errno
import os
import stat
from datetime import date

import pytest

from pipeline.common.errors import PipelineError, os_error_message
from pipeline.common.files import atomic_path, fault_point, recover, staged_folder, write_text
from pipeline.common.outputs import exclusive_output, folder_lock, parse_day, refuse_existing


def test_fault_point_is_inert_unless_named(monkeypatch, tmp_path):
    monkeypatch.delenv("NONRECOURS_FAULT", raising=False)
    fault_point("file-written", tmp_path / "a")  # nothing happens
    monkeypatch.setenv("NONRECOURS_FAULT", "enospc:file-written:b.csv")
    fault_point("file-written", tmp_path / "a.csv")  # another file
    fault_point("folder-staged", tmp_path / "b.csv")  # another point
    with pytest.raises(OSError) as exc:
        fault_point("file-written", tmp_path / "b.csv")
    assert exc.value.errno == errno.ENOSPC


def test_a_failed_write_keeps_the_previous_file_and_no_temp(monkeypatch, tmp_path):
    target = write_text(tmp_path / "t.csv", "ancien")
    monkeypatch.setenv("NONRECOURS_FAULT", "enospc:file-written")
    with pytest.raises(OSError):
        write_text(target, "nouveau")
    assert target.read_text() == "ancien"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


def test_temporary_file_is_owner_only_while_written(tmp_path):
    with atomic_path(tmp_path / "public.csv") as tmp:
        assert stat.S_IMODE(tmp.stat().st_mode) == 0o600
        tmp.write_text("x")
    assert stat.S_IMODE((tmp_path / "public.csv").stat().st_mode) == 0o644


def test_staged_folder_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "listes"
    with staged_folder(target) as staging:
        (staging / "a.csv").write_text("v1")
        (staging / "b.csv").write_text("v1")
    with pytest.raises(RuntimeError), staged_folder(target) as staging:
        (staging / "a.csv").write_text("v2")
        raise RuntimeError("échec au milieu")
    assert {p.name: p.read_text() for p in target.iterdir()} == {"a.csv": "v1", "b.csv": "v1"}
    with staged_folder(target) as staging:
        (staging / "c.csv").write_text("v3")
    assert [p.name for p in target.iterdir()] == ["c.csv"]  # no stale file from v1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["listes"]


def test_recover_puts_back_a_folder_whose_swap_was_cut(tmp_path):
    target = tmp_path / "central"
    aside = tmp_path / ".central.old"
    aside.mkdir()
    (aside / "targets.parquet").write_text("précédent")
    (tmp_path / ".central.partial").mkdir()
    recover(target)
    assert (target / "targets.parquet").read_text() == "précédent"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["central"]


def test_recover_drops_the_old_copy_when_the_swap_finished(tmp_path):
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "new").write_text("n")
    (tmp_path / ".export.old").mkdir()
    recover(tmp_path / "export")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_recover_removes_temporaries_inside_and_nested_swaps(tmp_path):
    work = tmp_path / "caf"
    (work / "export").mkdir(parents=True)
    stale = [work / ".handles.parquet.ab12cd34.tmp", work / "export" / ".caf.json.zz99yy88.tmp"]
    for p in stale:
        p.write_text("données personnelles")
    keep = work / ".notes.tmp"  # not a name atomic_path creates: left alone
    keep.write_text("x")
    (work / ".listes.old").mkdir()
    (work / ".listes.old" / "q1.csv").write_text("liste")
    recover(work)
    assert not any(p.exists() for p in stale)
    assert keep.exists()
    assert (work / "listes" / "q1.csv").read_text() == "liste"


def test_a_locked_folder_is_refused_after_the_wait(tmp_path):
    folder = tmp_path / "central"
    with (
        folder_lock(folder, wait=0),
        pytest.raises(PipelineError, match="une autre exécution"),
        folder_lock(folder, wait=0.2),
    ):
        pass
    with folder_lock(folder, wait=0):  # released
        pass
    lock = tmp_path / ".central.lock"
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600


def test_existing_outputs_need_remplacer(tmp_path):
    out = tmp_path / "out"
    refuse_existing([out], replace=False)  # absent: fine
    out.mkdir()
    refuse_existing([out], replace=False)  # empty: fine
    (out / "x").write_text("x")
    with pytest.raises(PipelineError, match="--remplacer"):
        refuse_existing([out], replace=False)
    refuse_existing([out], replace=True)
    with pytest.raises(PipelineError, match="existe déjà"), \
            exclusive_output(out, replace=False):
        pass


def test_dates_are_iso_only():
    assert parse_day("2026-12-01") == date(2026, 12, 1)
    for bad in ("01/12/2026", "20261201", "2026-13-01", "demain"):
        with pytest.raises(PipelineError, match="AAAA-MM-JJ"):
            parse_day(bad)


@pytest.mark.parametrize(("code", "words"), [
    (errno.ENOSPC, "disque plein"), (errno.EROFS, "lecture seule"),
    (errno.EACCES, "permission refusée"), (errno.ENOENT, "introuvable"),
])
def test_system_errors_read_in_french(code, words):
    message = os_error_message(OSError(code, os.strerror(code), "/srv/out/caf"))
    assert message.startswith("/srv/out/caf : ") and words in message
    assert "\n" not in message and os.strerror(code) not in message
