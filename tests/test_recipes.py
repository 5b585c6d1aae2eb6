"""Each recipe trains end to end on the real data: the accuracy runs are `slow` (CI runs them);
every recipe also runs a few steps in the fast suite."""
import pytest
import torch

import trainlab
from conftest import QUIET
from trainlab import api, checkpoint
from trainlab.config import recipe_names

# the torchvision backbones at 224x224 and the 60,000-JPEG folder are too slow for a smoke test
SMOKE = [r for r in recipe_names()  # cifar10-fast: its own test below, at a CPU-sized batch
         if r not in ("cifar10-vgg16", "ants-bees-resnet18", "image-folder", "table", "cifar10-fast")]


@pytest.mark.parametrize("recipe", SMOKE)
def test_every_recipe_runs_a_few_steps(recipe, data_dir, runs, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINLAB_CACHE", str(tmp_path / "cache"))
    r = api.train(recipe, max_steps=2, data_dir=str(data_dir), out_dir=str(runs), **QUIET)
    state = checkpoint.load(r.run_dir / "checkpoints" / "last.pt")
    assert state["step"] == 2 and state["config"]["recipe"] == recipe


@pytest.mark.slow
def test_default_recipe_reaches_95_percent(runs):
    """`trainlab train` with no argument: the notes' MNIST CNN, 10 epochs on the bundled sample."""
    r = api.train(out_dir=str(runs), tensorboard=False)
    assert r.metrics["accuracy"] >= 0.95
    assert len(r.history) == 10


@pytest.mark.slow
def test_mnist_mlp_matches_the_notes_loop(runs):
    """The notes' own loop reaches 86 % with this MLP after 10 epochs on the 5k sample."""
    r = api.train("mnist-mlp", out_dir=str(runs), tensorboard=False)
    assert r.metrics["accuracy"] >= 0.84


@pytest.mark.slow
def test_diabetes_reaches_the_notes_loss(data_dir, runs):
    r = api.train("diabetes", data_dir=str(data_dir), out_dir=str(runs), tensorboard=False)
    assert r.history[-1]["train_loss"] <= 0.48  # the notes reach about 0.46
    assert r.metrics["accuracy"] >= 0.72


@pytest.mark.slow
def test_cifar10_quick_one_epoch(data_dir, runs):
    """The notes' loop reaches 31 % after one epoch of plain SGD 0.01."""
    r = api.train("cifar10-quick", epochs=1, data_dir=str(data_dir), out_dir=str(runs), tensorboard=False)
    assert r.metrics["accuracy"] >= 0.25
    assert {p.name for p in (r.run_dir / "plots").iterdir()} == {"curves.png", "confusion.png", "per_class.png",
                                                                  "predictions.png"}


@pytest.mark.slow
def test_cifar10_lenet_short_run(data_dir, runs):
    api.train("cifar10-lenet", max_steps=1500, data_dir=str(data_dir), out_dir=str(runs), tensorboard=False)
    r = api.evaluate_run(str(runs / "cifar10-lenet"))
    assert r["step"] == 1500 and r["accuracy"] > 0.15 and len(r["per_class"]) == 10


@pytest.mark.slow
def test_ants_bees_folder_recipe(data_dir, runs, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINLAB_CACHE", str(tmp_path / "cache"))
    r = api.train("ants-bees", epochs=4, data_dir=str(data_dir), out_dir=str(runs), tensorboard=False)
    assert r.metrics["samples"] == 153 and r.history[-1]["train_loss"] < r.history[0]["train_loss"]


@pytest.mark.slow
def test_transfer_recipes_run_from_random_init(data_dir, runs, capsys):
    api.train("ants-bees-resnet18", epochs=1, head="append", freeze=True, data_dir=str(data_dir), out_dir=str(runs),
              tensorboard=False, plots=False)
    api.train("cifar10-vgg16", max_steps=2, batch_size=8, data_dir=str(data_dir), out_dir=str(runs), tensorboard=False)
    out = capsys.readouterr().out
    assert "resnet18: backbone starts from random init" in out and "vgg16: backbone starts from random init" in out
    state = checkpoint.load(runs / "ants-bees-resnet18" / "checkpoints" / "last.pt")
    assert "fc.1.weight" in state["model"]  # the appended head


def test_generic_recipes_print_what_they_inferred(data_dir, runs, capsys):
    api.train("image-folder", data_path=str(data_dir / "hymenoptera_data"), epochs=1, out_dir=str(runs),
              tensorboard=False, plots=False)
    api.train("table", data_path=str(data_dir / "diabetes.csv.gz"), epochs=2, out_dir=str(runs), tensorboard=False,
              plots=False)
    out = capsys.readouterr().out
    # val_fraction=0.1 of the 245 training photos, per class (12 + 12), validate; val/ is the test split
    assert "221 train / 24 validation / 153 test samples, input (3, 64, 64), 2 classes: ants, bees" in out
    assert "8 numeric + 0 categorical features, target 'c8' (classification, 2 classes)" in out
    assert out.count("test: ") == 2  # both evaluated their test split at the end


def test_cifar10_fast_runs_a_few_steps_on_cpu(data_dir, runs):
    """The GPU recipe runs on CPU too (slowly): a few steps, the stem whitened and frozen, BatchNorm
    biases at 64 x the lr, checkpoint written."""
    r = api.train("cifar10-fast", max_steps=3, batch_size=64, data_dir=str(data_dir), out_dir=str(runs),
                  tensorboard=False)
    state = trainlab.checkpoint.load(r.run_dir / "checkpoints" / "last.pt")
    assert state["step"] == 3 and state["config"]["label_smoothing"] == 0.2 and state["config"]["whiten"]
    assert state["config"]["scheduler"] == "linear" and state["config"]["amp"] == "auto"
    main, biases = state["optimizer"]["param_groups"]
    assert biases["lr"] == pytest.approx(64 * main["lr"]) and len(biases["params"]) == 7  # 6 BN biases + stem bias
    assert not r.model.stem[0].weight.requires_grad
    norms = state["model"]["stem.0.weight"].flatten(1).norm(dim=1)  # 1 / sqrt(eigenvalue + eps), largest first
    assert torch.all(norms[1:12] >= norms[:11]) and torch.equal(norms[:12], norms[12:])


@pytest.mark.slow
def test_cifar10_fast_learns_on_a_cpu_sized_subset(data_dir, runs):
    """airbench94's net with the recipe's settings (lr scaled to batch 64, as the recipe's comment
    says) on the first 5,000 training images for 4 epochs (312 steps), validated on the first 1,000
    test images: 43.7, 55.2, 62.8, 66.6 % after each epoch here. The cost is about 20,000 training
    samples at 0.7 GFLOP each: on the shared 2-core VM in fp32 (no native bf16) 8 minutes at load
    1-2, 14 at load 3.5 (benchmarks/NOTES.md section 17)."""
    from trainlab.config import make_config
    from trainlab.data import TensorData
    from trainlab.models import build_model

    cfg = make_config("cifar10-fast", dict(data_dir=str(data_dir), batch_size=64, lr=1.5 * 64 / 1024, epochs=4,
                                           eval_batch_size=500, out_dir=str(runs), **QUIET))
    s = api.load_data(cfg)
    train, test = TensorData(s.train.x[:5000], s.train.y[:5000]), TensorData(s.test.x[:1000], s.test.y[:1000])
    torch.manual_seed(0)
    r = trainlab.fit(build_model("cifar10-fast"), train, test, config=cfg, classes=s.classes)
    assert r.history[-1]["step"] == 312 and r.metrics["accuracy"] >= 0.60
