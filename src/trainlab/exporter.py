"""Export a trained run's model as TorchScript, ONNX or safetensors, checked against the checkpoint.

`trainlab export RUN --format torchscript|onnx|safetensors [--out PATH] [--best]`, or
`trainlab.export(run, "onnx")`. The exported model takes what the checkpoint's model takes: a
float32 batch (N, *input_shape) after the run's resizing and Normalize, and returns its raw outputs
(logits for cross_entropy). The batch axis is dynamic. The run's config, class names and input shape
travel with the file (TorchScript extra file, ONNX metadata, safetensors metadata; key "trainlab").

The file is written to a temporary name beside the target, loaded back and run on a seeded batch
of 4 random inputs and on a single input; the largest absolute difference to the checkpoint
model's outputs must be at most TOLERANCE times the largest output magnitude (at least 1), or the
export fails and nothing is left behind. Only then is the file renamed into place, replacing an
existing one (with a printed line). ONNX needs the `onnx` extra (`pip install -e ".[onnx]"`:
onnx, onnxscript, onnxruntime); without onnxruntime the check is skipped with a printed note.
"""
from __future__ import annotations

import copy
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .errors import UserError

FORMATS = {"torchscript": ".pt", "onnx": ".onnx", "safetensors": ".safetensors"}
TOLERANCE = 1e-4  # float32 reassociation in another runtime stays far below this, relative to |output|
EXAMPLE_BATCH = 4
INSTALL = 'pip install -e ".[onnx]" (or: pip install onnx onnxscript onnxruntime safetensors)'


@dataclass
class Exported:
    """Where the model went and how close the reloaded file came to the checkpoint."""

    path: Path
    format: str
    max_diff: float | None  # None: not checked (onnxruntime not installed)
    tolerance: float

    def describe(self) -> str:
        check = ("outputs not checked (onnxruntime is not installed)" if self.max_diff is None else
                 f"max abs difference to the checkpoint {self.max_diff:.2e} (tolerance {self.tolerance:.2e})")
        return f"exported {self.format} model to {self.path}; {check}"


def default_path(checkpoint: Path, fmt: str, best: bool) -> Path:
    """RUN/export/model[-best].EXT, or CHECKPOINT-export/ beside a checkpoint kept outside a run."""
    in_run = checkpoint.parent.name == "checkpoints" and (checkpoint.parent.parent / "config.yaml").exists()
    folder = checkpoint.parent.parent / "export" if in_run else checkpoint.with_name(f"{checkpoint.stem}-export")
    return folder / f"model{'-best' if best else ''}{FORMATS[fmt]}"


def export(run: str | Path, format: str = "torchscript", out: str | Path | None = None,
           best: bool = False) -> Exported:
    """Export the run's last (or best) checkpoint; returns the path and the measured difference."""
    from . import checkpoint as ckpt
    from .config import to_dict
    from .predict import load

    if format not in FORMATS:
        raise UserError(f"unknown export format '{format}'; choose one of: {', '.join(FORMATS)}")
    predictor = load(run, best=best, device="cpu")
    state = ckpt.load(predictor.path)
    input_shape = tuple(state.get("input_shape") or predictor.data_shape)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(EXAMPLE_BATCH, *input_shape, generator=g), torch.randn(1, *input_shape, generator=g)]
    meta = json.dumps({"classes": predictor.classes, "input_shape": list(input_shape),
                       "data_shape": list(predictor.data_shape), "checkpoint": str(predictor.path),
                       "epoch": state.get("epoch"), "config": to_dict(predictor.config)})
    target = Path(out).expanduser() if out else default_path(predictor.path, format, best)
    return write_checked(plain_model(predictor.model), batches, format, target, meta)


def write_checked(model: nn.Module, batches: list[torch.Tensor], format: str, target: Path, meta: str) -> Exported:
    """Write to a temporary file beside `target`, compare its outputs on `batches` with the model's,
    then fsync and rename it into place; on any failure nothing is left behind."""
    with torch.no_grad():
        expected = [model(x) for x in batches]
    scale = max([1.0] + [float(e.abs().max()) for e in expected])
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=FORMATS[format])
    os.close(fd)
    tmp = Path(name)
    try:
        outputs = WRITERS[format](model, batches, tmp, meta)
        diff = None if outputs is None else max(_max_diff(a, b) for a, b in zip(outputs, expected))
        if diff is not None and not diff <= TOLERANCE * scale:  # `not <=`: a NaN difference fails too
            raise UserError(f"the exported {format} model differs from the checkpoint by up to {diff:.3g} "
                            f"(tolerance {TOLERANCE * scale:.3g}); nothing was written")
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; an export is an ordinary output file
        if target.exists():
            print(f"replacing existing {target}")
        os.replace(tmp, target)
    except OSError as e:
        raise UserError(f"cannot write {target}: {e.strerror or e} (disk full?)") from e
    finally:
        tmp.unlink(missing_ok=True)
    return Exported(target, format, diff, TOLERANCE * scale)


def plain_model(model: nn.Module) -> nn.Module:
    """A float32, CPU, eval-mode copy in the default memory format (the run may train in channels_last)."""
    model = copy.deepcopy(model).float().cpu().eval()
    return model.to(memory_format=torch.contiguous_format)


def _max_diff(got, expected: torch.Tensor) -> float:
    got = torch.as_tensor(got).float()
    if got.shape != expected.shape:
        raise UserError(f"the exported model returns shape {tuple(got.shape)}, the checkpoint {tuple(expected.shape)}")
    return float((got - expected.float()).abs().max())


def _torchscript(model: nn.Module, batches: list[torch.Tensor], path: Path, meta: str) -> list[torch.Tensor]:
    """torch.jit.trace on the example batch (the registry's models have no data-dependent control flow).
    torch marks TorchScript deprecated in favour of torch.export; asked for by name, it is not warned about."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=r"`torch\.jit\.")
        try:
            with torch.no_grad():
                traced = torch.jit.trace(model, batches[0], check_trace=False)
        except Exception as e:
            raise UserError(f"cannot trace the model to TorchScript: {str(e).splitlines()[0]}") from e
        torch.jit.save(traced, str(path), _extra_files={"trainlab.json": meta})
        loaded = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return [loaded(x) for x in batches]


def _safetensors(model: nn.Module, batches: list[torch.Tensor], path: Path, meta: str) -> list[torch.Tensor]:
    """The state_dict; checked by loading it strictly into a copy of the model whose tensors were
    first overwritten (NaN / 0), so that a missing or wrong tensor shows up in the outputs."""
    try:
        from safetensors.torch import load_file, save_file
    except ImportError:
        raise UserError(f"safetensors export needs the safetensors package: {INSTALL}") from None
    tensors = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata={"trainlab": meta})
    blank = copy.deepcopy(model)
    with torch.no_grad():
        for t in blank.state_dict().values():
            t.fill_(float("nan") if t.is_floating_point() else 0)
    try:
        blank.load_state_dict(load_file(str(path)), strict=True)
    except RuntimeError as e:
        raise UserError(f"the safetensors file does not load back into the model: {str(e).splitlines()[0]}") from e
    with torch.no_grad():
        return [blank(x) for x in batches]


def _onnx(model: nn.Module, batches: list[torch.Tensor], path: Path, meta: str) -> list | None:
    """torch.onnx.export (the torch.export-based exporter, via onnxscript) with a dynamic batch axis,
    one self-contained file; run back through onnxruntime when it is installed."""
    try:
        import onnx
        import onnxscript  # noqa: F401  (the exporter needs it; fail here with the install line)
    except ImportError:
        raise UserError(f"ONNX export needs the onnx extra: {INSTALL}") from None
    batch = torch.export.Dim("batch", min=1)
    try:
        program = torch.onnx.export(model, (batches[0],), None, input_names=["input"], output_names=["output"],
                                    dynamo=True, verbose=False, dynamic_shapes=({0: batch},))
    except Exception as e:
        raise UserError(f"cannot export the model to ONNX: {str(e).strip().splitlines()[0]}") from e
    program.save(str(path), external_data=False)
    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, {"trainlab": meta})
    onnx.save(proto, str(path))
    try:
        import onnxruntime
    except ImportError:
        print(f"note: onnxruntime is not installed, so the ONNX file was not checked against the checkpoint; "
              f"{INSTALL}")
        return None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [torch.from_numpy(session.run(None, {"input": x.numpy()})[0]) for x in batches]


WRITERS = {"torchscript": _torchscript, "onnx": _onnx, "safetensors": _safetensors}
