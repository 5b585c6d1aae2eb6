import json
import os
import signal
import subprocess
import sys
import time

import pytest

from trainlab import checkpoint
from trainlab.cli import main


def run_cli(*args, timeout=120, **kw):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "trainlab", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, **kw)


def test_help_lists_commands():
    r = run_cli("--help")
    assert r.returncode == 0
    for cmd in ("ls", "train", "eval", "summary"):
        assert cmd in r.stdout


def test_ls(capsys):
    assert main(["ls"]) == 0
    out = capsys.readouterr().out
    for name in ("mnist-cnn", "mnist-mlp", "diabetes", "diabetes-net", "mnist-sample"):
        assert name in out


def test_summary_shapes_and_totals(capsys):
    assert main(["summary", "mnist-cnn"]) == 0
    out = capsys.readouterr().out
    assert "conv1 (Conv2d)" in out and "(1, 10, 24, 24)" in out and "(1, 20, 8, 8)" in out
    assert "(1, 10)" in out and "total params: 8,490" in out
    assert main(["summary", "diabetes"]) == 0  # a recipe name resolves to its model
    assert "total params: 87" in capsys.readouterr().out


@pytest.mark.parametrize("args,message", [
    (["train", "lr_rate=0.1"], "unknown config key 'lr_rate' (did you mean 'lr'?)"),
    (["train", "nope"], "unknown recipe 'nope'; available:"),
    (["train", "model=nope", "epochs=1"], "unknown model 'nope'; available:"),
    (["train", "dataset=nope"], "unknown dataset 'nope'; available:"),
    (["train", "optimizer=rmsprop"], "allowed values are sgd, adam, adamw"),
    (["train", "dataset=mnist", "data_dir=/nonexistent"], "missing /nonexistent/MNIST/raw/train-images-idx3-ubyte.gz and could not download it"),
    (["train", "model=diabetes-net", "epochs=1", "loss=bce"], "does not accept inputs of shape (1, 28, 28)"),
    (["eval", "/nonexistent/run"], "no checkpoint found for '/nonexistent/run'"),
    (["summary", "nope"], "unknown model 'nope'"),
])
def test_user_errors_are_one_line_exit_2(args, message, capsys, tmp_path):
    assert main([*args, f"out_dir={tmp_path}"] if args[0] == "train" else args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_key_from_a_fresh_process_has_no_traceback():
    r = run_cli("train", "epochs=ten")
    assert r.returncode == 2 and r.stderr.startswith("trainlab: error: bad value 'ten' for 'epochs'")
    assert "Traceback" not in r.stderr


def test_corrupt_checkpoint_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["eval", str(bad)]) == 2
    assert f"cannot read checkpoint {bad}" in capsys.readouterr().err


def test_train_eval_json(tmp_path, capsys):
    assert main(["train", "epochs=1", f"out_dir={tmp_path}", "tensorboard=false"]) == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "mnist-cnn"), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["samples"] == 10000 and r["accuracy"] > 0.6 and r["epoch"] == 1
    assert len(r["per_class"]) == 10 and sum(map(sum, r["confusion"])) == 10000
    assert main(["eval", str(tmp_path / "mnist-cnn"), "--best"]) == 0
    out = capsys.readouterr().out
    assert "per-class accuracy:" in out and "confusion matrix" in out


def test_nan_loss_exits_3_and_names_the_step(tmp_path):
    r = run_cli("train", "mnist-mlp", "lr=1e6", "epochs=2", "log_every=5", f"out_dir={tmp_path}", "tensorboard=false")
    assert r.returncode == 3, r.stderr
    assert "loss became nan at step" in r.stderr and "Traceback" not in r.stderr


def test_ctrl_c_checkpoints_and_exits_130(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "trainlab", "train", "mnist-mlp", "epochs=200",
                             f"out_dir={tmp_path}", "tensorboard=false"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "mnist-mlp" / "metrics.csv"
    deadline = time.time() + 60
    while not metrics.exists() and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted at step" in err and "resume with: trainlab train --resume" in err
    state = checkpoint.load(tmp_path / "mnist-mlp" / "checkpoints" / "last.pt")
    assert state["step"] >= 79


@pytest.mark.parametrize("args,message", [
    (["loss=bce", "epochs=1"], "loss 'bce' does not fit the model's output shape (10,)"),
    (["threads=-1"], "bad value -1 for 'threads': must be 0 or more"),
    (["label_smoothing=2"], "must be in [0, 1)"),
    (["betas=[0.9]", "optimizer=adam"], "two numbers in [0, 1)"),
    (["image_size=-3"], "must be 0 or more"),
    (['transforms=["RandomCrop(32, padding=4)"]', "epochs=1"], "does not accept inputs of shape (1, 32, 32)"),
])
def test_more_user_errors_are_one_line(args, message, tmp_path, capsys):
    assert main(["train", *args, f"out_dir={tmp_path}", "tensorboard=false"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_summary_of_cifar10_fast(capsys):
    assert main(["summary", "cifar10-fast"]) == 0
    out = capsys.readouterr().out
    assert "(1, 256, 4, 4)" in out and "(1, 10)" in out
