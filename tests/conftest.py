"""Shared fixtures: the real datasets unpacked by ../shared/datasets/prepare.py, tiny tensors."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """TRAINLAB_DATA (set by .ci/run) or ~/.cache/trainlab-data, unpacked from ../shared/datasets
    if missing. Fails if TRAINLAB_DATA is set but empty; skips only where ../shared is absent."""
    env = os.environ.get("TRAINLAB_DATA")
    path = Path(env or Path.home() / ".cache" / "trainlab-data")
    prepare = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "prepare.py"
    if not (path / "MNIST" / "raw").is_dir() and prepare.exists():
        subprocess.run([sys.executable, str(prepare), str(path)], check=True)  # cheap when already there
    if not (path / "MNIST" / "raw").is_dir():
        if env:
            pytest.fail(f"TRAINLAB_DATA={env} holds no prepared datasets")
        pytest.skip("real datasets not prepared (python ../shared/datasets/prepare.py DIR; TRAINLAB_DATA=DIR)")
    return path


@pytest.fixture
def runs(tmp_path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
def blobs():
    """A small separable 3-class problem: (x, y) train and validation tensors."""
    g = torch.Generator().manual_seed(0)
    centers = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.5]])
    y = torch.arange(3).repeat(100)
    x = centers[y] + 0.5 * torch.randn(len(y), 2, generator=g)
    return (x[:240], y[:240]), (x[240:], y[240:])


# Run options that keep a test run small: no TensorBoard events, no end-of-run plots.
QUIET = dict(tensorboard=False, plots=False)


@pytest.fixture
def quiet(runs) -> dict:
    """Config overrides for a quiet, small test run writing under the test's own runs folder."""
    return dict(QUIET, out_dir=str(runs))


def weights(run_dir: Path, which: str = "last") -> dict:
    """A run's checkpointed model state_dict."""
    from trainlab import checkpoint

    return checkpoint.load(Path(run_dir) / "checkpoints" / f"{which}.pt")["model"]


def assert_bitwise_equal(a: dict, b: dict) -> None:
    """Two state_dicts with the same keys and bitwise-equal tensors."""
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
