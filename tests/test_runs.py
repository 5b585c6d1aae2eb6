"""Run folders: names that stay inside out_dir, atomic creation under races, orphaned temp files."""
import multiprocessing
import os
from pathlib import Path

import pytest
import torch
from torch import nn

import trainlab
from trainlab.runs import Run, check_name, remove_stale_tmp, unique_dir
from trainlab.errors import UserError


@pytest.mark.parametrize("name", ["../../escape", "/abs/path", ".", "..", "a/b", "", "a\0b"])
def test_names_that_are_not_a_plain_folder_are_refused(name, tmp_path):
    with pytest.raises(UserError, match=r"must be a plain folder name"):
        check_name(name)
    with pytest.raises(UserError, match=r"must be a plain folder name"):
        unique_dir(str(tmp_path / "runs"), name)
    assert not (tmp_path / "runs").exists()  # refused before anything was created


@pytest.mark.parametrize("name", ["../../escape", "/abs/path", "."])
def test_fit_refuses_an_escaping_name_before_writing(name, tmp_path, blobs):
    (x, y), _ = blobs
    with pytest.raises(UserError, match=r"name=.*must be a plain folder name"):
        trainlab.fit(nn.Linear(2, 3), (x, y), epochs=1, name=name, out_dir=str(tmp_path / "runs"))
    assert list(tmp_path.iterdir()) == []


def test_unique_dir_creates_the_folder_and_numbers_repeats(tmp_path):
    first = unique_dir(str(tmp_path), "run")
    second = unique_dir(str(tmp_path), "run")
    third = unique_dir(str(tmp_path), "run")
    assert [first.name, second.name, third.name] == ["run", "run-2", "run-3"]
    assert all(p.is_dir() for p in (first, second, third))
    Run(second, {}, tensorboard=False)  # the trainer's Run() on the folder unique_dir made still works


def test_unique_dir_reports_an_unwritable_out_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match=r"cannot create a run folder for 'run' in .*file"):
        unique_dir(str(blocker), "run")


def _create(out_dir: str, barrier, queue) -> None:
    barrier.wait()  # every process calls unique_dir at the same moment
    queue.put(str(unique_dir(out_dir, "same")))


def test_concurrent_runs_of_one_name_get_distinct_folders(tmp_path):
    n = 8
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_create, args=(str(tmp_path), barrier, queue)) for _ in range(n)]
    for p in procs:
        p.start()
    got = [queue.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert len(set(got)) == n
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["same"] + [f"same-{i}" for i in range(2, n + 1)])


def test_run_announces_its_folder(tmp_path, capsys):
    Run(tmp_path / "r", {"a": 1}, tensorboard=False)
    assert f"run folder: {tmp_path / 'r'}" in capsys.readouterr().out
    Run(tmp_path / "quiet", {}, tensorboard=False, enabled=False)  # other ranks: nothing written or printed
    assert capsys.readouterr().out == "" and not (tmp_path / "quiet").exists()


def test_orphaned_checkpoint_temp_files_are_removed(tmp_path, blobs):
    ckpts = tmp_path / "r" / "checkpoints"
    ckpts.mkdir(parents=True)
    orphans = [ckpts / ".last.pt.abc123.tmp", ckpts / ".best.pt.x.tmp"]
    orphans[0].write_bytes(b"")  # a write killed at once
    orphans[1].write_bytes(b"partial")
    keep = [ckpts / "last.pt", ckpts / "notes.tmp"]
    for k in keep:
        k.write_bytes(b"x")
    Run(tmp_path / "r", {}, tensorboard=False)
    assert not any(p.exists() for p in orphans) and all(k.exists() for k in keep)
    assert remove_stale_tmp(ckpts) == []


def test_resume_cleans_up_after_a_killed_checkpoint_write(tmp_path, blobs):
    train, val = blobs
    r = trainlab.fit(nn.Linear(2, 3), train, val, epochs=1, out_dir=str(tmp_path), tensorboard=False, plots=False)
    orphan = r.run_dir / "checkpoints" / ".last.pt.k1ll3d.tmp"
    orphan.write_bytes(b"")
    torch.manual_seed(0)
    trainlab.fit(nn.Linear(2, 3), train, val, epochs=2, out_dir=str(tmp_path), tensorboard=False, plots=False,
                 resume=r.run_dir / "checkpoints" / "last.pt")
    assert not orphan.exists()
    assert sorted(os.listdir(r.run_dir / "checkpoints")) == ["best.pt", "last.pt"]
    assert sorted(Path(tmp_path).iterdir()) == [r.run_dir]  # resumed in place, no new folder
