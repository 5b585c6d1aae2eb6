"""Many processes through PyTorch's own engine: `torchrun` + `torch.distributed` + DDP.

Under torchrun (WORLD_SIZE > 1 in the environment) each process joins the process group (NCCL on
GPUs, gloo on CPUs) and trains a DistributedDataParallel copy of the model on its share of every
batch. `trainlab train RECIPE nproc=N` starts torchrun itself (`launch`). Only rank 0 writes:
console lines, progress bar, run folder, checkpoints. Nothing here is a home-made scheme: ranks
are started, watched and stopped by torchrun's elastic agent, gradients are averaged by DDP.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where it is used: `trainlab ls` must not load it
    import torch

# A rank waiting on a dead peer gives up after this; torchrun normally ends the job sooner.
TIMEOUT = timedelta(seconds=60)


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def from_env() -> Dist:
    """The process's place in a torchrun job (rank 0 of 1 outside torchrun)."""
    env = os.environ
    return Dist(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))


def setup(dist: Dist, device: torch.device) -> torch.device:
    """Join the process group once; each rank of a GPU job gets the GPU of its local rank."""
    if not dist.active:
        return device
    import torch
    import torch.distributed as td

    if device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    if not td.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        td.init_process_group(backend, timeout=TIMEOUT, device_id=device if device.type == "cuda" else None)
    return device


def is_main() -> bool:
    """True outside torchrun and on rank 0: the process that prints and writes."""
    return from_env().main


def wrap(model: torch.nn.Module, dist: Dist, device: torch.device) -> torch.nn.Module:
    """The model as trained: a DDP wrapper under torchrun (same parameters), else the model itself."""
    if not dist.active:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    return DDP(model, device_ids=[device.index] if device.type == "cuda" else None)


def all_sum(t: torch.Tensor, dist: Dist) -> torch.Tensor:
    """Element-wise sum over ranks (in place); the identity in one process."""
    if dist.active:
        import torch.distributed as td

        td.all_reduce(t)
    return t


def broadcast(obj: object, dist: Dist) -> object:
    """Rank 0's value of a picklable object (e.g. the run folder it created) on every rank."""
    if not dist.active:
        return obj
    import torch.distributed as td

    box = [obj]
    td.broadcast_object_list(box, src=0)
    return box[0]


def shutdown() -> None:
    td = sys.modules.get("torch.distributed")  # never imported: nothing to leave
    if td is not None and td.is_available() and td.is_initialized():
        td.destroy_process_group()


def launch(args: list[str], nproc: int) -> int:
    """Run `trainlab ARGS` under torchrun with nproc processes on this machine; its exit code."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "trainlab", *args]
    print(f"starting {nproc} processes: torchrun --standalone --nproc-per-node={nproc} -m trainlab "
          + " ".join(args), flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    proc = subprocess.Popen(cmd, env=env)
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:  # torchrun got the same Ctrl-C: its ranks save a checkpoint and stop
            continue
