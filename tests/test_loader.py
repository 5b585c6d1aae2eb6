"""Exact resume on both data paths, with random augmentation: CIFAR-10 on the device-resident
path (batched crop and flip) and an image folder through the DataLoader path (ColorJitter)."""
import pytest
import torch
from torch import nn

import trainlab
from conftest import assert_bitwise_equal
from trainlab import checkpoint
from trainlab.config import from_dict
from trainlab.data import TensorData, build_dataset


def tiny_cnn(classes: int = 10):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(4),
                         nn.Flatten(), nn.Linear(8 * 8 * 8, classes))


def run_twice(train, val, runs, classes=10, **opts):
    """An uninterrupted run, and one stopped at max_steps then resumed; returns both final weights."""
    opts.setdefault("threads", 2)  # one thread count for both runs: CPU sums depend on it
    full = trainlab.fit(tiny_cnn(classes), train, val, name="full", out_dir=str(runs), tensorboard=False, **opts)
    trainlab.fit(tiny_cnn(classes), train, val, name="part", out_dir=str(runs), tensorboard=False, max_steps=11, **opts)
    last = runs / "part" / "checkpoints" / "last.pt"
    cfg = from_dict({**checkpoint.load(last)["config"], "max_steps": 0})
    resumed = trainlab.fit(tiny_cnn(classes), train, val, config=cfg, resume=last)
    return checkpoint.load(full.run_dir / "checkpoints/last.pt")["model"], checkpoint.load(last)["model"], resumed


def test_cifar10_resume_exact_with_batched_augmentation(data_dir, runs):
    s = build_dataset("cifar10", data_dir=str(data_dir), download=False)
    train, val = TensorData(s.train.x[:600], s.train.y[:600]), TensorData(s.test.x[:200], s.test.y[:200])
    a, b, resumed = run_twice(train, val, runs, epochs=2, batch_size=64, lr=0.05, momentum=0.9,
                              transforms=["RandomCrop(32, padding=4)", "RandomHorizontalFlip()"],
                              mean=[0.49, 0.48, 0.45], std=[0.25, 0.24, 0.26])
    assert_bitwise_equal(a, b)


@pytest.mark.slow
def test_folder_resume_exact_through_dataloader_workers(data_dir, runs, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINLAB_CACHE", str(tmp_path / "cache"))
    s = build_dataset("ants-bees", data_dir=str(data_dir), image_size=40)
    a, b, resumed = run_twice(s.train, s.test, runs, classes=2, epochs=2, batch_size=32, lr=0.02, workers=2,
                              transforms=["RandomCrop(32)", "ColorJitter(brightness=0.3)"],
                              mean=[0.5] * 3, std=[0.25] * 3)
    assert_bitwise_equal(a, b)
    assert resumed.metrics["samples"] == len(s.test)


def test_notes_concat_dataset_trains_through_fit(data_dir, runs):
    from trainlab.data.folder import LabelledImages

    root = data_dir / "hymenoptera_data"
    train = LabelledImages(root / "train", "ants") + LabelledImages(root / "train", "bees")
    val = LabelledImages(root / "val", "ants") + LabelledImages(root / "val", "bees")
    r = trainlab.fit(tiny_cnn(2), train, val, epochs=1, batch_size=32, workers=0, out_dir=str(runs), tensorboard=False,
                     transforms=["Resize(32)", "CenterCrop(32)"], mean=[0.5] * 3, std=[0.25] * 3)
    assert r.metrics["samples"] == 153 and len(r.metrics["per_class"]) == 2


def test_data_stats_equal_torchvision(data_dir, capsys, monkeypatch):
    import torchvision

    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *a, **k: True)  # the shared copy has other md5s
    from trainlab.cli import main

    assert main(["data", "stats", "cifar10", f"data_dir={data_dir}"]) == 0
    out = capsys.readouterr().out
    mean = [float(v) for v in out.split("mean: [")[1].split("]")[0].split(",")]
    ref = torchvision.datasets.CIFAR10(str(data_dir), train=True, download=False).data  # (N, 32, 32, 3) uint8
    x = torch.from_numpy(ref).double() / 255
    assert torch.allclose(torch.tensor(mean, dtype=torch.float64), x.mean((0, 1, 2)), atol=1e-4)
    from trainlab.data.stats import channel_stats

    m, sd = channel_stats(build_dataset("cifar10", data_dir=str(data_dir), download=False).train)
    assert torch.allclose(torch.tensor(m, dtype=torch.float64), x.mean((0, 1, 2)), atol=1e-5)
    assert torch.allclose(torch.tensor(sd, dtype=torch.float64), x.std((0, 1, 2)), atol=1e-5)
