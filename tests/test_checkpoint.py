"""Checkpoints: atomic writes that never lose the previous file, weights_only reads; every damaged
or foreign file is one clear UserError naming the file and the entry."""
import copy

import pytest
import torch
from torch import nn

from conftest import tiny_run
from trainlab import checkpoint
from trainlab.cli import main
from trainlab.errors import UserError
from trainlab.optim import Schedule


def test_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    checkpoint.save({"model": {}, "config": {}, "epoch": 0, "step": 0, "v": 1}, path)

    def full(*a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:671] . unexpected pos 768 vs 662")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(UserError, match=r"cannot write checkpoint .*last.pt: .*the previous file is intact"):
        checkpoint.save({"model": {}, "config": {}, "epoch": 0, "step": 0, "v": 2}, path)
    monkeypatch.undo()
    assert checkpoint.load(path)["v"] == 1 and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


class Gadget:  # a custom class: pickled by reference, so weights_only loading must refuse it
    pass


@pytest.fixture(scope="module")
def full_state(tmp_path_factory) -> dict:
    """A complete checkpoint of a real (tiny) run, as resume reads it."""
    run = tiny_run(tmp_path_factory.mktemp("runs"))
    return checkpoint.load(run / "checkpoints" / "last.pt", resume=True)


def test_a_real_checkpoint_validates(full_state, tmp_path):
    checkpoint.validate(full_state, "x.pt")
    checkpoint.save(full_state, tmp_path / "last.pt")
    assert checkpoint.load(tmp_path / "last.pt", resume=True)["step"] == 2


def _set(state: dict, dotted: str, value) -> dict:
    state = copy.deepcopy(state)
    *parents, last = dotted.split(".")
    target = state
    for p in parents:
        target = target[p]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return state


@pytest.mark.parametrize("entry,value,message", [
    ("optimizer", KeyError, "no 'optimizer' entry"),
    ("rng", KeyError, "no 'rng' entry"),
    ("config", [1, 2], "entry 'config': expected a dict of config values, found list"),
    ("config", "x", "entry 'config': expected a dict"),
    ("config.lr", "fast", "entry 'config': bad value 'fast' for 'lr'"),
    ("config.name", "../../x", "entry 'config': name='../../x': must be a plain folder name"),
    ("config.nope", 1, "entry 'config': unknown config key 'nope'"),
    ("model", [1, 2], "entry 'model': expected a state_dict"),
    ("model", "weights", "entry 'model': expected a state_dict"),
    ("model.weight", 3, "entry 'model': 'weight' is not a named tensor"),
    ("epoch", -1, "entry 'epoch': expected a whole number"),
    ("step", "2", "entry 'step': expected a whole number"),
    ("classes", [1, 2], "entry 'classes': expected a list of class names"),
    ("input_shape", [0], "entry 'input_shape': expected a list of sizes"),
    ("optimizer", {"state": {}}, "entry 'optimizer': expected an optimizer state_dict"),
    ("optimizer.param_groups", [{"lr": 1}], "entry 'optimizer': each parameter group"),
    ("scheduler", [1], "entry 'scheduler': expected a dict"),
    ("rng.torch", torch.zeros(3, dtype=torch.uint8), "entry 'rng': 'torch' is not a torch RNG state"),
    ("rng.python", (3, (1, 2), None), "entry 'rng': 'python' is not a random.getstate() state"),
    ("rng.numpy", {}, "entry 'rng': 'numpy' is not a numpy MT19937 state"),
    ("loader.position", -4, "entry 'loader': 'position' and 'epochs_started'"),
    ("loader.generator", torch.zeros(5), "entry 'loader': expected the data order state"),
    ("progress.epoch", 1.5, "entry 'progress': 'epoch' must be a number"),
    ("progress.surprise", 1, "entry 'progress': unknown field 'surprise'"),
])
def test_validate_names_the_bad_entry(full_state, tmp_path, entry, value, message):
    bad = _set(full_state, entry, value)
    with pytest.raises(UserError, match=r"x\.pt: .*" + message.replace("(", r"\(").replace(")", r"\)")):
        checkpoint.validate(bad, "x.pt")
    torch.save(bad, tmp_path / "bad.pt")  # the same through load, as resume reads it
    with pytest.raises(UserError, match="bad.pt"):
        checkpoint.load(tmp_path / "bad.pt", resume=True)


def test_eval_and_predict_need_only_the_model_entries(full_state):
    slim = {k: full_state[k] for k in ("model", "config", "epoch", "step", "classes", "input_shape")}
    checkpoint.validate(slim, "x.pt", resume=False)
    with pytest.raises(UserError, match="no 'optimizer' entry"):
        checkpoint.validate(slim, "x.pt")


@pytest.mark.parametrize("args", [["eval", "{p}"], ["predict", "{p}", "digit.png"], ["train", "--resume", "{p}"],
                                  ["report", "{p}"]])
def test_empty_checkpoint_is_one_clear_line(tmp_path, capsys, args):
    empty = tmp_path / "run" / "checkpoints" / "last.pt"
    empty.parent.mkdir(parents=True)
    empty.write_bytes(b"")  # what a write killed between create and the first byte leaves
    target = str(empty) if args[0] in ("eval", "predict") else str(tmp_path / "run")
    assert main([a.format(p=target) for a in args]) == 2
    err = capsys.readouterr().err
    assert err == f"trainlab: error: cannot read checkpoint {empty}: EOFError\n"


def test_hostile_pickle_is_refused_without_suggesting_weights_only_false(tmp_path):
    path = tmp_path / "last.pt"
    torch.save({"model": Gadget(), "config": {}}, path)
    with pytest.raises(UserError) as e:
        checkpoint.load(path)
    message = str(e.value)
    assert message.startswith(f"cannot read checkpoint {path}: it holds a Python object")
    assert "test_checkpoint.Gadget" in message
    assert "weights_only" not in message and "\n" not in message and "\x1b" not in message


def test_no_checkpoint_found_names_each_place_once(tmp_path):
    run = tmp_path / "nothing"
    with pytest.raises(UserError) as e:
        checkpoint.resolve(str(run), out_dir="runs")
    looked = str(e.value).split("(looked for ")[1]
    assert looked == f"{run / 'checkpoints' / 'last.pt'})"
    with pytest.raises(UserError, match=r"looked for nothing/checkpoints/last.pt, runs/nothing/checkpoints"):
        checkpoint.resolve("nothing", out_dir="runs")


def test_a_folder_named_like_a_checkpoint(tmp_path):
    (tmp_path / "x.pt").mkdir()
    with pytest.raises(UserError, match="no checkpoint found"):
        checkpoint.resolve(str(tmp_path / "x.pt"))
    with pytest.raises(UserError, match="x.pt: it is a folder"):
        checkpoint.load(tmp_path / "x.pt")


def test_first_line_of_an_empty_message():
    assert checkpoint.first_line(EOFError("")) == "EOFError"
    assert checkpoint.first_line(ValueError("a\nb")) == "a"


def test_scheduler_state_must_hold_what_the_configured_scheduler_keeps(full_state):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    state = copy.deepcopy(full_state)
    state["config"]["scheduler"] = "step"
    state["scheduler"] = Schedule(opt, torch.optim.lr_scheduler.StepLR(opt, step_size=2), False).state_dict()
    checkpoint.validate(state, "x.pt")
    state["scheduler"]["scheduler"]["last_epoch"] = None  # torch would accept it and fail at the next step
    with pytest.raises(UserError, match=r"x.pt: bad checkpoint entry 'scheduler': 'scheduler'.last_epoch should be a "
                                        r"whole number"):
        checkpoint.validate(state, "x.pt")
    state["scheduler"]["scheduler"]["last_epoch"], state["scheduler"]["scheduler"]["base_lrs"] = 0, ["fast"]
    with pytest.raises(UserError, match=r"'scheduler'.base_lrs\[0\] should be a number, found 'fast'"):
        checkpoint.validate(state, "x.pt")
