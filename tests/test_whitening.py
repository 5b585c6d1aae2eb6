"""whiten=true: the first Conv2d whitens the training images' patches and stays frozen through training and resume."""
import pytest
import torch
from torch import nn

import trainlab
from conftest import QUIET, assert_bitwise_equal, weights
from trainlab import checkpoint
from trainlab.config import from_dict
from trainlab.data.batches import Normalize
from trainlab.errors import UserError
from trainlab.whitening import whiten

CPU = torch.device("cpu")


def correlated_images(n=300, size=12, seed=0) -> torch.Tensor:
    """(n, 3, size, size) float images whose pixels are correlated across channels and neighbours, with an offset."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, 3, size + 1, size + 1, generator=g)
    smooth = noise[:, :, 1:, 1:] + 0.8 * noise[:, :, :-1, 1:] + 0.5 * noise[:, :, 1:, :-1]  # neighbours share noise
    mix = torch.tensor([[1.0, 0.6, 0.3], [0.2, 1.0, 0.5], [0.1, 0.4, 1.0]])
    return torch.einsum("dc,nchw->ndhw", mix, smooth) + torch.tensor([0.5, -1.0, 2.0]).view(1, 3, 1, 1)


def output_covariance(conv: nn.Conv2d, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean (C,), covariance (C, C)) of the conv's outputs over every image and position, float64."""
    with torch.no_grad():
        y = conv(x).transpose(0, 1).reshape(conv.out_channels, -1).double()  # (C, N * H * W)
    return y.mean(1), torch.cov(y, correction=0)


def test_whitened_outputs_have_identity_covariance_and_zero_mean():
    x = correlated_images()
    conv = nn.Conv2d(3, 24, 2)  # 24 = 2 x 12 patch dimensions: the directions and their negations
    whiten(conv, x)
    mean, cov = output_covariance(conv, x)
    eye = torch.eye(12, dtype=torch.float64)
    assert torch.allclose(cov[:12, :12], eye, atol=5e-3)  # l / (l + eps): eps=5e-4, eigenvalues l >= 0.19 here
    assert torch.allclose(cov[:12, 12:], -eye, atol=5e-3)
    assert mean.abs().max() < 1e-4  # the bias centres the outputs
    raw = torch.cov(nn.Conv2d(3, 24, 2)(x).detach().transpose(0, 1).reshape(24, -1).double())
    assert (raw[:12, :12] - eye).abs().max() > 0.1  # an ordinary conv's outputs are far from white


def test_fewer_channels_take_the_top_directions_and_too_many_are_an_error():
    x = correlated_images()
    full, top, between = nn.Conv2d(3, 24, 2), nn.Conv2d(3, 5, 2, bias=False), nn.Conv2d(3, 16, 2)
    for conv in (full, top, between):
        whiten(conv, x)
    assert torch.equal(top.weight, full.weight[:5])  # largest eigenvalues first
    assert torch.equal(between.weight, full.weight[:16])  # 12 directions, then the negations of the top 4
    with pytest.raises(UserError, match="25 output channels, more than twice its 12 patch dimensions"):
        whiten(nn.Conv2d(3, 25, 2), x)


class SmallConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 2)  # 8 of the 12 patch directions
        self.body = nn.Sequential(nn.GELU(), nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.GELU(),
                                  nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(8, 3))

    def forward(self, x):  # (B, 3, 8, 8) -> (B, 3)
        return self.body(self.stem(x))


def image_data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g)
    return x, (x.float().mean((1, 2, 3)) > 127.5).long() + (x[:, 0, 0, 0] > 200).long()


OPTS = dict(batch_size=16, lr=0.2, momentum=0.9, whiten=True, mean=[0.5, 0.4, 0.3], std=[0.25, 0.2, 0.3],
            transforms=["RandomCrop(8, padding=1, padding_mode='reflect')", "RandomHorizontalFlip()"], threads=1,
            log_every=4, **QUIET)


def test_the_whitened_weight_is_frozen_and_stays_out_of_the_optimizer(runs):
    x, y = image_data()
    torch.manual_seed(0)
    r = trainlab.fit(SmallConvNet(), (x, y), (x, y), epochs=2, out_dir=str(runs), **OPTS)
    expected = nn.Conv2d(3, 8, 2)  # the same whitening, computed apart: the first images after Normalize
    whiten(expected, Normalize(OPTS["mean"], OPTS["std"], 3, CPU)(x))
    trained = weights(r.run_dir)
    assert torch.allclose(trained["stem.weight"], expected.weight, atol=1e-6)  # unchanged after 12 steps
    assert not torch.allclose(trained["stem.bias"], expected.bias, atol=1e-3)  # the bias trains
    assert not r.model.stem.weight.requires_grad and r.model.stem.bias.requires_grad
    state = checkpoint.load(r.run_dir / "checkpoints" / "last.pt")
    trainable = sum(p.requires_grad for p in r.model.parameters())
    assert sum(len(g["params"]) for g in state["optimizer"]["param_groups"]) == trainable == 7


def test_resume_of_a_whitened_run_is_bitwise_exact(runs):
    x, y = image_data()
    opts = dict(OPTS, epochs=3, out_dir=str(runs), bias_lr_scale=4)
    torch.manual_seed(0)
    full = trainlab.fit(SmallConvNet(), (x, y), (x, y), name="full", **opts)
    torch.manual_seed(0)
    trainlab.fit(SmallConvNet(), (x, y), (x, y), name="part", max_steps=8, **opts)  # mid-epoch 2
    last = runs / "part" / "checkpoints" / "last.pt"
    torch.manual_seed(5)  # another fresh model: the whitened weights must come from the checkpoint
    config = from_dict({**checkpoint.load(last)["config"], "max_steps": 0})
    trainlab.fit(SmallConvNet(), (x, y), (x, y), config=config, resume=last)
    assert_bitwise_equal(weights(full.run_dir), weights(runs / "part"))


class FlatToImage(nn.Module):
    """Has a Conv2d but takes flat (B, 12) features."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 4, 2), nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.conv(x.view(-1, 3, 2, 2)).flatten(1))


def test_whiten_needs_a_conv_and_images(runs, blobs):
    with pytest.raises(UserError, match=r"whiten=true needs a model with an nn.Conv2d; Linear has none"):
        trainlab.fit(nn.Linear(2, 3), *blobs, whiten=True, out_dir=str(runs), **QUIET)
    x = torch.randn(64, 12)
    with pytest.raises(UserError, match=r"whiten=true needs image inputs \(N, C, H, W\); the data are \(12,\)"):
        trainlab.fit(FlatToImage(), (x, torch.arange(64) % 3), whiten=True, out_dir=str(runs), **QUIET)
    assert not runs.exists()  # refused before the run folder was made


def test_whitened_run_under_torchrun_equals_one_process(runs):
    """DDP must be built after the weight is frozen (else it waits for a gradient that never comes)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from trainlab import api

    one = api.train("mnist-cnn", batch_size=64, name="one", whiten=True, max_steps=4, out_dir=str(runs), **QUIET)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    two = subprocess.run([sys.executable, "-m", "trainlab", "train", "mnist-cnn", "batch_size=32", "nproc=2",
                          "name=two", "whiten=true", "max_steps=4", f"out_dir={runs}", "tensorboard=false",
                          "plots=false"], capture_output=True, text=True, timeout=300, env=env)
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = weights(one.run_dir), weights(runs / "two")
    assert torch.equal(a["conv1.weight"], b["conv1.weight"])  # the same whitening on every rank, untouched
    for k in a:  # gloo sums the two halves' gradients in another order than one batch does
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=0), k
