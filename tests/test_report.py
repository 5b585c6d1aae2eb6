"""report.write_plots under faults: a full disk costs the plots, one warning line, never the run."""
import errno
import os
from pathlib import Path

import pytest
import torch
from torch import nn

import trainlab
from trainlab.report import write_plots

EVAL = {"confusion": [[3, 1], [0, 4]], "per_class": [0.75, 1.0]}


def write_metrics(run: Path) -> None:
    run.mkdir(parents=True, exist_ok=True)
    (run / "metrics.csv").write_text("epoch,step,train_loss,val_loss,val_acc,lr,seconds\n"
                                     "1,4,0.9,0.8,0.5,0.1,0.2\n2,8,0.6,0.5,0.9,0.1,0.2\n")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_full_disk_while_plotting_is_one_warning(tmp_path, capsys):
    run = tmp_path / "run"
    write_metrics(run)
    (run / "plots").mkdir()
    (run / "plots" / "curves.png").symlink_to("/dev/full")  # every write there fails with ENOSPC
    (run / "plots" / "confusion.png").symlink_to("/dev/full")
    paths = write_plots(run, EVAL, ["a", "b"], None, [], [])
    assert [p.name for p in paths] == ["per_class.png"] and paths[0].stat().st_size > 0
    err = capsys.readouterr().err
    assert err == (f"warning: could not write curves.png, confusion.png in {run / 'plots'}: "
                   "No space left on device (checkpoints are not affected)\n")


def test_training_survives_a_full_disk_at_the_end(tmp_path, blobs, monkeypatch, capsys):
    import matplotlib.figure

    def full(self, path, *a, **k):
        Path(path).write_bytes(b"\x89PNG partial")  # what a full disk leaves: a torn file
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full)
    train, val = blobs
    r = trainlab.fit(nn.Linear(2, 3), train, val, epochs=2, out_dir=str(tmp_path), tensorboard=False)
    err = capsys.readouterr().err
    assert "warning: could not write curves.png, confusion.png, per_class.png" in err and "Traceback" not in err
    assert list((r.run_dir / "plots").iterdir()) == []  # no torn PNG left behind
    state = torch.load(r.run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert state["epoch"] == 2 and len(r.history) == 2
