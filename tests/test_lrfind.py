"""The learning-rate finder: an exponential sweep, a smoothed loss and a suggestion that makes sense."""
import math

import pytest

from trainlab.cli import main
from trainlab.config import make_config
from trainlab.errors import UserError
from trainlab.lrfind import steepest, sweep


def test_steepest_descent_of_a_known_curve():
    lrs = [10 ** (-6 + i * 0.1) for i in range(60)]  # 1e-6 .. ~1
    losses = [2.0 - math.tanh(math.log10(lr) + 3) for lr in lrs]  # falls fastest at lr = 1e-3
    assert steepest(lrs, losses) == pytest.approx(1e-3, rel=0.3)
    with pytest.raises(UserError, match="diverged after 2 steps"):
        steepest(lrs[:2], losses[:2])


def test_sweep_on_the_mnist_mlp_suggests_a_sane_lr(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = sweep(make_config("mnist-mlp", {"threads": "1"}), steps=120)
    assert result.lrs[0] == pytest.approx(1e-7) and all(b > a for a, b in zip(result.lrs, result.lrs[1:]))
    assert 1e-4 < result.suggestion < 3.0  # SGD on this MLP trains well around 1e-2 .. 1e-1
    assert main(["lr-find", "mnist-mlp", "threads=1", "--steps", "60", "--out", "sweep.png"]) == 0
    out = capsys.readouterr().out
    assert "suggested lr:" in out and (tmp_path / "sweep.png").stat().st_size > 5000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.png"]  # nothing else written
