"""Checkpoints: one plain dict, written atomically, read back with `weights_only=True`.

The dict holds model, optimizer, scheduler and scaler state, every RNG (python, numpy, torch,
CUDA, the data generator), the loop's progress and the resolved config, so a run resumes exactly.
"""
from __future__ import annotations

import dataclasses
import os
import random
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from .errors import UserError


def rng_state() -> dict:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                  "has_gauss": has_gauss, "cached": cached},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(as_byte_state(state["torch"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([as_byte_state(s) for s in state["cuda"]])


def as_byte_state(t: torch.Tensor) -> torch.Tensor:
    """An RNG state as torch's setters require it, a CPU ByteTensor, wherever it was mapped to."""
    return t.detach().to("cpu", torch.uint8).contiguous()


def save(state: dict, path: Path) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a checkpoint is an ordinary output file
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # torch.save reports a full disk as a RuntimeError from its zip writer
        Path(tmp).unlink(missing_ok=True)
        reason = getattr(e, "strerror", None) or first_line(e)
        raise UserError(f"cannot write checkpoint {path}: {reason} (disk full?); the previous file is intact") from e
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def keep_copy(path: Path, copy: Path, keep: int) -> None:
    """Keep `path` also as `copy` (a hard link: no second write) and delete all but the newest
    `keep` files named like `copy` (step-NNNNNNN.pt sort by step)."""
    tmp = copy.with_name(f".{copy.name}.link")
    tmp.unlink(missing_ok=True)
    try:
        os.link(path, tmp)
    except OSError:  # a file system without hard links
        import shutil

        shutil.copyfile(path, tmp)
    os.replace(tmp, copy)
    stem = copy.stem.split("-")[0]
    kept = sorted(path.parent.glob(f"{stem}-*.pt"))
    for old in kept[:-keep]:
        old.unlink(missing_ok=True)


def first_line(e: BaseException) -> str:
    """The first line of an exception's message, or its type name when the message is empty
    (an empty file gives EOFError(''))."""
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def read_error(e: BaseException) -> str:
    """Why torch.load refused a file, without torch's advice to retry with weights_only=False:
    trainlab never unpickles arbitrary objects, so that advice would be dangerous to repeat."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
    if "weights only load failed" in text.lower() or "weightsunpickler" in text.lower():
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        what = f" ({found[1]})" if found else ""
        return f"it holds a Python object{what} that is not plain tensors and containers; it is not loaded"
    line = first_line(e)
    return "unreadable file" if "weights_only" in line else line


def resolve(run_or_checkpoint: str, out_dir: str = "runs", which: str = "last") -> Path:
    """A checkpoint file from a checkpoint path, a run folder, or a run name under out_dir."""
    path = Path(run_or_checkpoint)
    candidates = [path] if path.suffix == ".pt" else [
        path / "checkpoints" / f"{which}.pt", Path(out_dir) / path / "checkpoints" / f"{which}.pt"]
    candidates = list(dict.fromkeys(candidates))  # an absolute RUN gives the same path twice
    for c in candidates:
        if c.is_file():
            return c
    raise UserError(f"no checkpoint found for '{run_or_checkpoint}' (looked for {', '.join(map(str, candidates))})")


def load(path: Path, map_location: str | torch.device = "cpu", *, resume: bool = False) -> dict:
    """A checkpoint dict, read without unpickling anything and checked by `validate` (with every
    entry resume needs when `resume`); anything else is a UserError naming the file."""
    try:
        with warnings.catch_warnings():  # a foreign file's odd pickle protocol: the error below says enough
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"checkpoint not found: {path}") from None
    except IsADirectoryError:
        raise UserError(f"cannot read checkpoint {path}: it is a folder") from None
    except Exception as e:  # a torn or foreign file: pickle, zip and weights_only errors vary
        raise UserError(f"cannot read checkpoint {path}: {read_error(e)}") from None
    validate(state, path, resume=resume)
    return state


# A checkpoint's entries and what each must be. `validate` reports the first problem by entry name,
# so a damaged or foreign file is a clear error instead of a KeyError/TypeError deep in resume.
BASE = ("model", "config", "epoch", "step")
RESUME = (*BASE, "optimizer", "scheduler", "scaler", "rng", "loader", "progress")


def validate(state: object, path: Path | str, *, resume: bool = True) -> None:
    """Check a loaded checkpoint's structure and types; UserError naming the first bad entry.

    Always: model, config, epoch and step, and classes, info, input_shape, data_shape and metrics
    when present. With `resume`, also every entry resume restores: optimizer, scheduler, scaler,
    rng, loader and progress. Whether the weights fit the model is checked where they are loaded.
    """
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise UserError(f"{path} is not a trainlab checkpoint (no model/config entries)")
    required = RESUME if resume else BASE
    for name, check in CHECKS.items():
        if name not in state:
            if name in required:
                raise UserError(f"{path}: incomplete trainlab checkpoint: no '{name}' entry")
            continue
        problem = check(state[name])
        if problem:
            raise UserError(f"{path}: bad checkpoint entry '{name}': {problem}")
    problem = _scheduler_like_config(state) if resume else None
    if problem:
        raise UserError(f"{path}: bad checkpoint entry 'scheduler': {problem}")


def _is_int(v: object, low: int = 0, high: float = float("inf")) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _model(v: object) -> str | None:
    if not isinstance(v, dict):
        return f"expected a state_dict (dict of tensors), found {type(v).__name__}"
    bad = [k for k, t in v.items() if not isinstance(k, str) or not isinstance(t, torch.Tensor)]
    return f"{bad[0]!r} is not a named tensor" if bad else None


def _config(v: object) -> str | None:
    from .config import from_dict

    if not isinstance(v, dict):
        return f"expected a dict of config values, found {type(v).__name__}"
    try:
        from_dict(v)
    except UserError as e:
        return str(e)
    return None


def _count(v: object) -> str | None:
    return None if _is_int(v) else f"expected a whole number >= 0, found {v!r}"


def _classes(v: object) -> str | None:
    ok = v is None or (isinstance(v, list) and all(isinstance(c, str) for c in v))
    return None if ok else "expected a list of class names"


def _shape(v: object) -> str | None:
    ok = isinstance(v, (list, tuple)) and all(_is_int(d, 1) for d in v)
    return None if ok else f"expected a list of sizes, found {v!r}"


def _dict(v: object) -> str | None:
    return None if isinstance(v, dict) else f"expected a dict, found {type(v).__name__}"


def _dict_or_none(v: object) -> str | None:
    return None if v is None else _dict(v)


def _optimizer(v: object) -> str | None:
    if not isinstance(v, dict) or not isinstance(v.get("state"), dict) or not isinstance(v.get("param_groups"), list):
        return "expected an optimizer state_dict with 'state' and 'param_groups'"
    for group in v["param_groups"]:
        if not isinstance(group, dict) or not isinstance(group.get("params"), list) \
                or not all(_is_int(i) for i in group["params"]):
            return "each parameter group must be a dict listing its 'params' indices"
    return None


def _uint8_vector(v: object, size: int) -> bool:
    return isinstance(v, torch.Tensor) and v.dtype == torch.uint8 and v.dim() == 1 and v.numel() == size


def _rng(v: object) -> str | None:
    if not isinstance(v, dict):
        return f"expected a dict of RNG states, found {type(v).__name__}"
    py, n = v.get("python"), v.get("numpy")
    if not (isinstance(py, (tuple, list)) and len(py) == 3 and _is_int(py[0])
            and isinstance(py[1], (tuple, list)) and len(py[1]) == 625
            and all(_is_int(i, 0, 2**32 - 1) for i in py[1]) and py[1][-1] <= 624
            and (py[2] is None or _is_number(py[2]))):
        return "'python' is not a random.getstate() state"
    if not (isinstance(n, dict) and isinstance(n.get("keys"), torch.Tensor) and tuple(n["keys"].shape) == (624,)
            and _is_int(n.get("pos"), 0, 624) and _is_int(n.get("has_gauss"), 0, 1) and _is_number(n.get("cached"))):
        return "'numpy' is not a numpy MT19937 state"
    if not _uint8_vector(v.get("torch"), torch.get_rng_state().numel()):
        return "'torch' is not a torch RNG state (uint8 tensor)"
    cuda = v.get("cuda", [])
    if not (isinstance(cuda, (list, tuple)) and all(isinstance(t, torch.Tensor) and t.dtype == torch.uint8
                                                    for t in cuda)):
        return "'cuda' is not a list of CUDA RNG states"
    return None


def _loader(v: object) -> str | None:
    if not isinstance(v, dict) or not _uint8_vector(v.get("generator"), torch.Generator().get_state().numel()):
        return "expected the data order state: a 'generator' state and a 'position'"
    if not _is_int(v.get("position")) or not _is_int(v.get("epochs_started", 0)):
        return "'position' and 'epochs_started' must be whole numbers >= 0"
    return None


def _progress(v: object) -> str | None:
    from .results import Progress

    if not isinstance(v, dict):
        return f"expected a dict, found {type(v).__name__}"
    fields = {f.name: f for f in dataclasses.fields(Progress)}
    for key, value in v.items():
        if key not in fields:
            return f"unknown field {key!r}"
        if key == "early_stopped":
            ok = isinstance(value, bool)
        else:
            ok = _is_int(value) if key in ("epoch", "step", "samples", "stale_epochs", "correct") else \
                _is_number(value) or (key in ("best", "patience_best") and value is None)
        if not ok:
            return f"{key!r} must be a number, found {value!r}"
    return None


def _scheduler_like_config(state: dict) -> str | None:
    """Whether the saved scheduler state holds the kinds of values (whole numbers, lists, ...) that
    the config's scheduler keeps; torch's load_state_dict copies them unchecked and a wrong one
    only fails steps later, mid-run. Keys the saved state lacks keep their fresh values in torch."""
    from .config import from_dict
    from .optim import Schedule, build_optimizer, build_scheduler

    cfg = from_dict(state["config"])
    if not state["scheduler"] or cfg.scheduler == "none":
        return None  # the trainer restores a scheduler only when both exist
    try:
        opt = build_optimizer([torch.nn.Parameter(torch.zeros(1))], cfg.optimizer, cfg.lr, cfg.momentum,
                              cfg.nesterov, cfg.weight_decay, cfg.betas)
        sched, per_step = build_scheduler(opt, cfg.scheduler, epochs=cfg.epochs, steps_per_epoch=1,
                                          step_size=cfg.step_size, gamma=cfg.gamma, milestones=cfg.milestones,
                                          max_lr=cfg.max_lr, lr_patience=cfg.lr_patience,
                                          start_factor=cfg.start_factor, peak_at=cfg.peak_at,
                                          end_factor=cfg.end_factor)
        ref = Schedule(opt, sched, per_step, cfg.warmup_steps)
    except (UserError, ValueError):  # settings the run itself refuses when it builds them
        return None
    return _unlike(ref.state_dict(), state["scheduler"], "")


def _unlike(ref: object, value: object, where: str) -> str | None:
    """The first place where `value` is not the same kind of thing as `ref`, or None."""
    kinds = [(bool, bool, "true or false"), (int, int, "a whole number"), (float, (int, float), "a number"),
             (str, str, "text"), (torch.Tensor, torch.Tensor, "a tensor")]
    for ref_kind, allowed, label in kinds:
        if isinstance(ref, ref_kind):
            ok = isinstance(value, allowed) and (ref_kind is bool or not isinstance(value, bool))
            return None if ok else f"{where or 'the state'} should be {label}, found {value!r}"
    pairs: list = []  # (reference, value, where) one level down
    if isinstance(ref, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            return f"{where or 'the state'} should be a list, found {value!r}"
        pairs = [(ref[0], v, f"{where}[{i}]") for i, v in enumerate(value)] if ref else []
    elif isinstance(ref, dict):
        if not isinstance(value, dict):
            return f"{where or 'the state'} should be a dict, found {type(value).__name__}"
        pairs = [(ref[k], v, f"{where}.{k}" if where else repr(k)) for k, v in value.items() if k in ref]
    for r, v, w in pairs:  # None or another kind in the reference: nothing to compare against
        problem = _unlike(r, v, w)
        if problem:
            return problem
    return None


CHECKS = {"model": _model, "config": _config, "epoch": _count, "step": _count, "classes": _classes,
          "info": _dict, "input_shape": _shape, "data_shape": _shape, "metrics": _dict,
          "optimizer": _optimizer, "scheduler": _dict_or_none, "scaler": _dict_or_none, "rng": _rng,
          "loader": _loader, "progress": _progress, "ema": _model}
