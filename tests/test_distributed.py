"""Many processes through torchrun + DDP on the CPU (gloo): the same run as one process with the
global batch, one writer, checkpoints shared between 1 and N processes, a dying rank ends the job."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import QUIET, assert_bitwise_equal, weights
from trainlab import api
from trainlab.data.batches import SeededEpochs
from trainlab.runs import read_metrics

SRC = str(Path(__file__).resolve().parents[1] / "src")
ENV = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
QUIET_WORDS = [f"{k}={str(v).lower()}" for k, v in QUIET.items()]


def trainlab(*args, timeout=300, **kw):
    """`trainlab ARGS` in a fresh process (nproc=N in ARGS starts torchrun)."""
    return subprocess.run([sys.executable, "-m", "trainlab", *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV, **kw)


@pytest.mark.parametrize("n,world,batch", [(10, 2, 2), (9, 2, 2), (5000, 2, 32), (7, 3, 1), (12, 1, 5)])
def test_ranks_share_each_global_batch_exactly_once(n, world, batch):
    ranks = [SeededEpochs(n, batch, shuffle=True, seed=0, drop_last=False, rank=r, world=world) for r in range(world)]
    assert len({len(r) for r in ranks}) == 1  # the same number of steps on every rank
    for i in range(len(ranks[0])):
        shares = [r.bounds(i) for r in ranks]
        assert shares[0][0] == i * batch * world and all(a[1] == b[0] for a, b in zip(shares, shares[1:]))
        assert all(hi > lo for lo, hi in shares)  # no rank gets an empty batch
        assert ranks[0].global_size == shares[-1][1] - shares[0][0]
    served = sum(hi - lo for r in ranks for lo, hi in [r.bounds(i) for i in range(len(r))])
    assert n - served < world  # at most a final global batch smaller than the number of ranks is dropped


def test_two_processes_equal_one_with_the_global_batch(runs):
    one = api.train("mnist-cnn", epochs=1, batch_size=64, name="one", out_dir=str(runs), **QUIET)
    r = trainlab("train", "mnist-cnn", "epochs=1", "batch_size=32", "nproc=2", "name=two", f"out_dir={runs}",
                 *QUIET_WORDS)
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(p.name for p in runs.iterdir()) == ["one", "two"]  # one folder for the two ranks
    assert r.stdout.count("epoch 1/1") == 1 and r.stdout.count("run saved in") == 1  # rank 0 alone prints
    a, b = weights(one.run_dir), weights(runs / "two")
    for k in a:  # gloo sums the two halves' gradients in another order than one batch does: 1e-5
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=0), k
    row1, row2 = read_metrics(runs / "one")[0], read_metrics(runs / "two")[0]
    for key in ("epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc"):
        assert float(row1[key]) == pytest.approx(float(row2[key]), rel=1e-4), key
    evaluated = api.evaluate_run(str(runs / "two"))  # trained on 2, evaluated on 1
    assert evaluated["accuracy"] == pytest.approx(float(row2["val_acc"]), rel=1e-5)
    assert (runs / "two" / "metrics.csv").read_text().count("\n") == 2  # header + one row, not interleaved


def rank_pid(parent: int, rank: int, deadline: float) -> int:
    """The pid of the torchrun worker with RANK=rank below `parent`."""
    while time.time() < deadline:
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                env = (d / "environ").read_bytes().split(b"\0")
                stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if f"RANK={rank}".encode() in env and b"LOCAL_RANK=%d" % rank in env and int(stat[1]) != parent:
                return int(d.name)
        time.sleep(0.2)
    raise AssertionError(f"no rank {rank} found")


@pytest.mark.slow
def test_a_killed_rank_ends_the_job_and_resume_on_two_is_exact(runs):
    common = ["mnist-mlp", "epochs=2", "batch_size=32", "nproc=2", f"out_dir={runs}", *QUIET_WORDS]
    full = trainlab("train", *common, "name=full")
    assert full.returncode == 0, full.stderr[-3000:]
    proc = subprocess.Popen([sys.executable, "-m", "trainlab", "train", *common, "name=cut"], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics, deadline = runs / "cut" / "metrics.csv", time.time() + 240
    while not metrics.exists() and time.time() < deadline:
        time.sleep(0.1)
    os.kill(rank_pid(proc.pid, 1, deadline), signal.SIGKILL)
    killed = time.time()
    proc.communicate(timeout=90)
    assert proc.returncode != 0 and time.time() - killed < 60
    again = trainlab("train", "--resume", str(runs / "cut"))  # nproc=2 comes from the checkpoint
    assert again.returncode == 0, again.stderr[-3000:]
    assert "starting 2 processes" in again.stdout
    assert_bitwise_equal(weights(runs / "full"), weights(runs / "cut"))
    assert [r["epoch"] for r in read_metrics(runs / "cut")] == ["1", "2"]
