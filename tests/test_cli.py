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
    (["train", "mnist-mpl"], "unknown recipe 'mnist-mpl' (did you mean 'mnist-mlp'?); available:"),
    (["train", "learning_rate=0.1"], "unknown config key 'learning_rate' (did you mean 'lr'?)"),
    (["train", "epochs=3", "mnist-mlp"], "the recipe comes first: trainlab train mnist-mlp epochs=3"),
    (["train", "--epochs", "3"], "config keys are key=value words, not options: use epochs=3"),
    (["train", "mnist-mlp", "--learning-rate=0.1"], "not options: use lr=0.1"),
    (["config", "bs=32"], "unknown config key 'bs' (did you mean 'batch_size'?)"),
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
    assert main(["train", "epochs=1", f"out_dir={tmp_path}", "tensorboard=false", "plots=false"]) == 0
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "mnist-cnn"), "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # compact: one line
    r = json.loads(out)
    assert r["samples"] == 10000 and r["accuracy"] > 0.6 and r["epoch"] == 1
    assert list(r["per_class"]) == [str(d) for d in range(10)] and 0 <= r["per_class"]["7"] <= 1
    assert r["confusion"]["labels"] == list(r["per_class"]) and sum(map(sum, r["confusion"]["matrix"])) == 10000
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


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A two-step mnist-mlp run: enough for eval and predict."""
    from trainlab import api

    out = tmp_path_factory.mktemp("runs")
    return api.train("mnist-mlp", epochs=1, max_steps=2, out_dir=str(out), tensorboard=False, plots=False,
                     threads=1).run_dir


def run_into_closed_pipe(*args):
    """Run the CLI with stdout a pipe whose reader has already gone (as `| head` after one line)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([sys.executable, "-m", "trainlab", *args], stdout=write, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    finally:
        os.close(write)


@pytest.mark.parametrize("args", [["summary", "mnist-cnn"], ["eval", "RUN"]])
def test_a_reader_that_stops_early_ends_quietly_with_141(args, tiny_run):
    r = run_into_closed_pipe(*[str(tiny_run) if a == "RUN" else a for a in args])
    assert r.returncode == 141 and r.stderr == ""  # no BrokenPipeError traceback


def test_a_closed_pipe_in_process_returns_141(monkeypatch):
    def closed(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("trainlab.cli._stdout_broken", lambda: True)
    monkeypatch.setattr("trainlab.cli.cmd_ls", closed)
    assert main(["ls"]) == 141
    monkeypatch.setattr("trainlab.cli._stdout_broken", lambda: False)  # another pipe broke: a real error
    with pytest.raises(BrokenPipeError):
        main(["ls"])


def test_predict_prints_each_error_once(tiny_run, tmp_path, capsys):
    from PIL import Image

    Image.new("L", (28, 28), 255).save(tmp_path / "good.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    assert main(["predict", str(tiny_run), str(tmp_path / "good.png"), str(tmp_path / "broken.png")]) == 1
    out, err = capsys.readouterr()
    assert out.startswith(f"{tmp_path / 'good.png'}: ") and out.count("\n") == 1 and "broken" not in out
    assert err.count("\n") == 1 and err.startswith(f"trainlab: error: cannot read image {tmp_path / 'broken.png'}")
    assert main(["predict", str(tiny_run), str(tmp_path / "broken.png"), "--json"]) == 1
    out, err = capsys.readouterr()
    assert "cannot read image" in json.loads(out)[0]["error"] and err.count("\n") == 1  # data + one line


def test_train_announces_the_run_folder_first(tmp_path, capsys):
    assert main(["train", "mnist-mlp", "max_steps=1", "epochs=1", f"out_dir={tmp_path}", "tensorboard=false",
                 "plots=false", "threads=1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    folder = [line for line in lines if line.startswith("run folder: ")]
    assert folder == [f"run folder: {tmp_path / 'mnist-mlp'}"] and lines.index(folder[0]) <= 1  # after "data: ..."


@pytest.mark.parametrize("args,message", [
    (["eval", "some-run", "best=1"], "unknown config key 'best'"),  # was a TypeError: clashed with best=
    (["train", "--resume", "some-run", "run=x"], "unknown config key 'run'"),
    (["train", "recipe=None"], "unknown recipe 'None'"),  # was a TypeError: clashed with train(recipe)
    (["train", "mnist-cnn", "recipe=mnist-mlp"], "two recipes given: 'mnist-cnn' and recipe=mnist-mlp"),
])
def test_override_keys_that_clash_with_arguments(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_summary_of_cifar10_fast(capsys):
    assert main(["summary", "cifar10-fast"]) == 0
    out = capsys.readouterr().out
    assert "(1, 24, 31, 31)" in out and "(1, 256, 3, 3)" in out and "(1, 10)" in out  # airbench94's 2x2 stem


def test_train_help_lists_every_key_with_type_default_and_meaning(capsys):
    import dataclasses

    from trainlab.config import Config

    with pytest.raises(SystemExit) as e:
        main(["train", "--help"])
    assert e.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    for f in dataclasses.fields(Config):
        line = next(x for x in lines if x.startswith(f"  {f.name} "))
        assert f.metadata["help"] in line
    assert next(x for x in lines if x.startswith("  lr ")).split()[:3] == ["lr", "float", "0.01"]
    assert next(x for x in lines if x.startswith("  betas ")).split()[:4] == ["betas", "list[float]", "[0.9,", "0.999]"]
    assert "[sgd | adam | adamw]" in next(x for x in lines if x.startswith("  optimizer "))
    assert any(x.startswith("  mnist-mlp ") and "model=mnist-mlp" in x for x in lines)  # the recipes


def test_version(capsys):
    from trainlab import __version__

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"trainlab {__version__}"


def test_config_prints_the_resolved_config_without_training(tmp_path, capsys):
    import yaml

    from trainlab.config import make_config, to_dict

    assert main(["config", "mnist-mlp", "epochs=3", f"out_dir={tmp_path}"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == to_dict(make_config("mnist-mlp", {"epochs": "3", "out_dir": str(tmp_path)}))
    assert printed["model"] == "mnist-mlp" and printed["momentum"] == 0.5 and printed["epochs"] == 3
    assert list(tmp_path.iterdir()) == []


def test_piped_output_has_no_bar_frames_and_one_line_per_epoch(tmp_path):
    r = run_cli("train", "linear-regression", "epochs=2", "save_every=1", f"out_dir={tmp_path}", "tensorboard=false",
                "plots=false")
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stdout + r.stderr and "batch/s" not in r.stderr
    assert [x.split()[1] for x in r.stdout.splitlines() if x.startswith("epoch ")] == ["1/2", "2/2"]


def test_data_stats_on_a_table_shows_raw_columns(tmp_path, capsys):
    rows = [f"{1 + i % 5},{'red' if i % 3 else 'blue'},{'' if i == 4 else 100 + 10 * i},{i % 2}" for i in range(20)]
    csv = tmp_path / "houses.csv"
    csv.write_text("rooms,colour,area,sold\n" + "\n".join(rows) + "\n")
    assert main(["data", "stats", "table", f"data_path={csv}", "target=sold", "cache=false"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("houses.csv: 20 rows, 4 columns")
    rooms = next(x for x in lines if x.startswith("rooms ")).split()
    assert rooms[1:5] == ["numeric", "20", "0", "3"]  # raw mean 3, not the standardised 0
    assert next(x for x in lines if x.startswith("area ")).split()[2:4] == ["19", "1"]  # count, missing
    assert "most common 'red'" in next(x for x in lines if x.startswith("colour "))
    assert any(x.startswith("sold (target)") for x in lines)


def test_error_messages_stay_on_one_line(monkeypatch, capsys):
    from trainlab.errors import UserError

    def fails(args):
        raise UserError("t.csv: column 'x', line 4: '4\n4' is not a number")

    monkeypatch.setattr("trainlab.cli.cmd_ls", fails)
    assert main(["ls"]) == 2
    assert capsys.readouterr().err == "trainlab: error: t.csv: column 'x', line 4: '4\\n4' is not a number\n"
