"""trainlab runs: the table of run folders, statuses from status.json (or inferred without one)."""
import json
import os
import re
import shutil

import torch

import trainlab
from trainlab.cli import main
from trainlab.runlist import list_runs, read_run


def test_runs_table_shows_every_run_with_its_status(trained_runs, capsys):
    assert main(["runs", str(trained_runs["images"].parent)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["name", "recipe/model", "status", "epochs", "best val", "last val",
                                             "wall time"]
    rows = {cells[0]: cells for cells in (re.split(r"\s{2,}", line) for line in lines[2:])}
    assert sorted(rows) == ["diverged", "images", "stopped", "table", "tensors"]
    assert rows["images"][1:6] == ["image-folder/folder-cnn", "finished", "2/2", "100.00% (ep 1)", "100.00%"]
    assert rows["stopped"][1:6] == ["api/custom", "stopped at step 3", "0/2", "-", "-"]
    assert rows["diverged"][2] == "diverged"
    assert re.fullmatch(r"\d+\.\ds", rows["table"][6])  # wall time


def test_a_running_run_and_one_whose_process_is_gone(trained_runs, tmp_path):
    run = shutil.copytree(trained_runs["tensors"], tmp_path / "live")
    status = json.loads((run / "status.json").read_text())
    status.update(state="running", epoch=1, step=2, pid=os.getpid())
    (run / "status.json").write_text(json.dumps(status))
    assert read_run(run).state == "running (epoch 1/2)"
    status["pid"] = 2 ** 22 + 12345  # above Linux's pid_max: no such process
    (run / "status.json").write_text(json.dumps(status))
    assert read_run(run).state == "stopped at step 2 (process gone)"


def test_a_run_from_before_status_json_is_inferred_from_its_metrics(trained_runs, tmp_path):
    run = shutil.copytree(trained_runs["tensors"], tmp_path / "old")
    (run / "status.json").unlink()
    info = read_run(run)
    assert info.state == "finished" and info.wall_seconds > 0  # the metrics' training seconds
    (run / "config.yaml").write_text((run / "config.yaml").read_text().replace("epochs: 2", "epochs: 5"))
    assert read_run(run).state == "stopped at step 4"


def test_sessions_record_stop_and_resume(runs):
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(3))
    data = (x, (x[:, 0] > 0).long())
    common = dict(epochs=2, batch_size=16, out_dir=str(runs), threads=1, tensorboard=False, plots=False)
    first = trainlab.fit(torch.nn.Linear(2, 2), data, data, max_steps=6, **common)
    trainlab.fit(torch.nn.Linear(2, 2), data, data, resume=first.run_dir / "checkpoints" / "last.pt", **common)
    status = json.loads((first.run_dir / "status.json").read_text())
    assert [s["outcome"] for s in status["sessions"]] == ["stopped", "finished"]
    assert status["sessions"][0]["reason"] == "max_steps" and status["sessions"][0]["to_step"] == 6
    resumed = status["sessions"][1]
    assert resumed["resumed"] and (resumed["from_epoch"], resumed["from_step"]) == (1, 6)
    assert (status["state"], status["step"]) == ("finished", 8)
    assert resumed["hardware"]["device"] == "cpu"


def test_runs_errors_are_one_line(tmp_path, capsys):
    assert main(["runs", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.startswith(f"trainlab: error: no runs folder {tmp_path / 'nowhere'}")
    assert main(["runs", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("no runs in")
    assert list_runs(tmp_path) == []


def test_resuming_a_run_from_before_status_json_starts_its_history_at_its_last_epoch(runs):
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(4))
    data = (x, (x[:, 0] > 0).long())
    common = dict(batch_size=16, out_dir=str(runs), threads=1, tensorboard=False, plots=False)
    first = trainlab.fit(torch.nn.Linear(2, 2), data, data, epochs=1, **common)
    (first.run_dir / "status.json").unlink()
    trainlab.fit(torch.nn.Linear(2, 2), data, data, epochs=2, resume=first.run_dir / "checkpoints" / "last.pt",
                 **common)
    session = json.loads((first.run_dir / "status.json").read_text())["sessions"][0]
    assert session["resumed"] and (session["from_epoch"], session["from_step"], session["to_step"]) == (1, 4, 8)
