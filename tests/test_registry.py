"""The model registry and users' own models: a builder in the user's file (model=file.py:fn) used
through train -> eval -> predict -> resume, registry models passed to fit(), and fit()'s own modules."""
import json

import pytest
import torch
from PIL import Image
from torch import nn

import trainlab
from conftest import QUIET
from trainlab.cli import main
from trainlab.errors import UserError
from trainlab.registry import build_model, get_model_entry

MODEL_FILE = '''
from torch import nn


def tiny(num_classes=10, input_shape=(1, 28, 28)):
    """A linear classifier of whole images."""
    c, h, w = input_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, num_classes))
'''


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "mymodels.py"
    path.write_text(MODEL_FILE)
    return path


def test_a_model_file_trains_evaluates_predicts_and_resumes(model_file, tmp_path, capsys, monkeypatch):
    runs = tmp_path / "runs"
    words = [f"out_dir={runs}", "tensorboard=false", "plots=false", "name=mine"]
    assert main(["train", "mnist-mlp", f"model={model_file}:tiny", "epochs=1", *words]) == 0
    monkeypatch.chdir(tmp_path.parent)  # eval from elsewhere: the run recorded the file's absolute path
    capsys.readouterr()
    assert main(["eval", str(runs / "mine"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] > 0.7
    digit = tmp_path / "digit.png"
    Image.new("L", (28, 28), 0).save(digit)
    assert main(["predict", str(runs / "mine"), str(digit)]) == 0
    assert main(["train", "--resume", str(runs / "mine"), "epochs=2"]) == 0
    state = trainlab.checkpoint.load(runs / "mine" / "checkpoints" / "last.pt")
    assert state["epoch"] == 2 and state["config"]["model"] == f"{model_file.resolve()}:tiny"


def test_model_file_errors_name_the_file(model_file, tmp_path):
    with pytest.raises(UserError, match=r"model file not found: .*nothere.py"):
        get_model_entry(f"{tmp_path}/nothere.py:tiny")
    with pytest.raises(UserError, match=r"mymodels.py has no function 'small'; it defines: .*tiny"):
        get_model_entry(f"{model_file}:small")
    broken = tmp_path / "broken.py"
    broken.write_text("import nonexistent_module_xyz\n")
    with pytest.raises(UserError, match=r"importing model file .*broken.py failed: ModuleNotFoundError"):
        get_model_entry(f"{broken}:tiny")
    with pytest.raises(UserError, match=r"model=path/to/file.py:build_fn"):
        get_model_entry("no-such-model")


def test_fit_records_registry_models_and_load_takes_a_users_module(blobs, runs):
    torch.manual_seed(0)
    r = trainlab.fit(build_model("table-mlp", num_classes=3, input_shape=(2,)), *blobs, epochs=2, out_dir=str(runs),
                     name="reg", **QUIET)
    x = torch.tensor([[2.0, 0.0], [0.0, 2.5]])
    rebuilt = trainlab.load(r.run_dir)  # the registry model, rebuilt from the run's config
    with torch.no_grad():
        assert torch.allclose(rebuilt.forward(x), r.model.cpu()(x), atol=1e-6)
    mine = trainlab.fit(nn.Linear(2, 3), *blobs, epochs=2, out_dir=str(runs), name="own", **QUIET)
    with pytest.raises(UserError, match=r"trainlab.load\(run, model=MyNet\(\)\)"):
        trainlab.load(mine.run_dir)
    p = trainlab.load(mine.run_dir, model=nn.Linear(2, 3))
    assert torch.equal(p.model.weight.cpu(), mine.model.weight.detach().cpu())
