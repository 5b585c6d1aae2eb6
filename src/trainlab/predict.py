"""Prediction with a trained run: `trainlab predict` and `trainlab.load(run).predict(inputs)`.

Inputs get exactly the run's evaluation preprocessing. Images of any size or mode are converted
to the run's channels (grayscale or RGB), resized (shorter side) and centre-cropped to the shape
the model was trained on, then go through the evaluation transforms and Normalize. CSV rows get
the column preprocessing fitted on the training split, stored in the checkpoint.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from .data import TensorData
from .data.images import EXTENSIONS, decode_image
from .errors import UserError


@dataclass
class Prediction:
    input: str
    top: list[tuple[str, float]] = field(default_factory=list)  # (class, probability), best first
    value: list[float] | None = None  # regression outputs
    error: str | None = None

    def as_dict(self) -> dict:
        if self.error:
            return {"input": self.input, "error": self.error}
        if self.value is not None:
            return {"input": self.input, "value": self.value}
        return {"input": self.input, "predictions": [{"class": c, "probability": p} for c, p in self.top]}


def expand_inputs(inputs: list[str | Path]) -> list[Path]:
    """Files as given; folders become the images inside them (sorted, recursive)."""
    out = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.suffix.lower() in EXTENSIONS)
            if not found:
                raise UserError(f"no images found in folder {item}")
            out += found
        else:
            out.append(item)
    return out


class Predictor:
    """A trained run ready to predict: `trainlab.load(run).predict(["cat.jpg", "rows.csv"])`."""

    def __init__(self, run_or_checkpoint: str | Path, best: bool = False, device: str = "auto",
                 model: torch.nn.Module | None = None, tta: str | None = None):
        from .api import load_checkpoint_model, open_run
        from .runtime import build

        overrides = {"device": device, **({"tta": tta} if tta is not None else {})}  # tta None: the run's own
        self.path, state, self.config = open_run(str(run_or_checkpoint), best, **overrides)
        self.classes = list(state.get("classes") or [])
        self.info = state.get("info") or {}
        self.data_shape = tuple(state.get("data_shape") or state.get("input_shape") or ())
        model = load_checkpoint_model(state, self.config, self.path, model)  # `model`: a fit() run's own module
        # the runtime evaluation used: device, precision, memory format (NHWC for image inputs)
        image = len(self.data_shape) == 3
        example = TensorData(torch.zeros(1, *self.data_shape, dtype=torch.uint8 if image else torch.float32),
                             torch.zeros(1, dtype=torch.int64))
        self.runtime = build(self.config, model, example)
        self.model, self.device = self.runtime.model.eval(), self.runtime.device

    def predict(self, inputs: list, top_k: int = 3) -> list[Prediction]:
        """One Prediction per image file / folder image / CSV row / tensor, in input order;
        an unreadable file gets `.error` and the others are still predicted."""
        slots: list = []  # a Prediction, a list of them (CSV rows), or the index of an image in `images`
        images, names = [], []
        for item in inputs if isinstance(inputs, (list, tuple)) else [inputs]:
            try:
                paths = [item] if isinstance(item, torch.Tensor) else expand_inputs([item])
            except UserError as e:  # e.g. an empty folder: reported, the other inputs still predicted
                slots.append(Prediction(str(item), error=str(e)))
                continue
            for path in paths:
                try:
                    if isinstance(path, torch.Tensor):
                        images.append(path.cpu())  # inputs on any device; results on the CPU
                        names.append(f"tensor[{len(names)}]")
                    elif path.suffix.lower() in (".csv", ".gz"):
                        slots.append(self.predict_table(path, top_k))
                        continue
                    elif len(self.data_shape) != 3:
                        raise UserError(f"{path}: this run takes rows of {self.data_shape[0]} features (a CSV file), "
                                        "not images")
                    else:
                        images.append(decode_image(path, *self.data_shape))
                        names.append(str(path))
                    slots.append(len(images) - 1)
                except UserError as e:
                    slots.append(Prediction(str(path), error=str(e)))
        predicted = self.outputs_to_predictions(self.forward(torch.stack(images)), names, top_k) if images else []
        out: list[Prediction] = []
        for slot in slots:
            out += slot if isinstance(slot, list) else [predicted[slot] if isinstance(slot, int) else slot]
        return out

    def predict_table(self, path: Path, top_k: int) -> list[Prediction]:
        from .data.table import encode_rows, read_table

        columns, rows = read_table(path)
        names = [f"{path}:row {i + 1}" for i in range(len(rows))]
        if "table" in self.info:  # rows whose features cannot be represented get an error of their own
            x, problems = encode_rows(self.info["table"], columns, rows)
            good = [i for i in range(len(rows)) if i not in problems]
            predicted = (self.outputs_to_predictions(self.forward(x[good]), [names[i] for i in good], top_k)
                         if good else [])
            out = dict(zip(good, predicted))
            return [out[i] if i in out else Prediction(names[i], error=f"{names[i]}: {problems[i]}")
                    for i in range(len(rows))]
        else:  # a model on raw numeric features (e.g. the notes' regressions): every column is an input
            try:
                x = torch.tensor([[float(v) for v in row] for row in rows], dtype=torch.float32)
            except ValueError as e:
                raise UserError(f"{path}: expected numeric feature columns ({e})") from e
            if x.shape[1:] != torch.Size(self.data_shape):
                raise UserError(f"{path}: rows have {x.shape[1]} values, the model takes {self.data_shape}")
        return self.outputs_to_predictions(self.forward(x), names, top_k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs (on the CPU) for inputs on any device: uint8 images or float feature rows."""
        data = TensorData(x.cpu(), torch.zeros(len(x), dtype=torch.int64))
        return self.runtime.outputs(self.runtime.eval_batches(data))

    def outputs_to_predictions(self, out: torch.Tensor, names: list[str], top_k: int) -> list[Prediction]:
        from .metrics import unscale

        predictions = self._outputs_to_predictions(out, names, top_k)
        if not self.classes:  # a standardised regression target back in its own units
            scale = (self.info.get("table") or {}).get("target_scale")
            for p, o in zip(predictions, unscale(out, scale)):
                p.value = o.reshape(-1).tolist()
        finite = torch.isfinite(out.reshape(len(out), -1)).all(1).tolist() if len(out) else []
        for p, ok in zip(predictions, finite):
            if not ok:
                p.error, p.top, p.value = f"{p.input}: the model's output is not a finite number (NaN or inf)", [], None
        return predictions

    def _outputs_to_predictions(self, out: torch.Tensor, names: list[str], top_k: int) -> list[Prediction]:
        loss = self.config.loss
        if not self.classes:
            return [Prediction(n, value=o.tolist()) for n, o in zip(names, out)]
        if loss in ("bce", "bce_logits"):
            p = out.reshape(-1) if loss == "bce" else torch.sigmoid(out.reshape(-1))
            probs = torch.stack([1 - p, p], 1)
        else:
            probs = out.exp() if loss == "nll" else torch.softmax(out, 1)
        k = max(1, min(top_k, probs.shape[1]))
        values, idx = probs.topk(k, 1)
        return [Prediction(n, [(self.classes[i], round(v, 6)) for v, i in zip(vs.tolist(), ix.tolist())])
                for n, vs, ix in zip(names, values, idx)]


def load(run_or_checkpoint: str | Path, best: bool = False, device: str = "auto",
         model: torch.nn.Module | None = None, tta: str | None = None) -> Predictor:
    """A trained run or checkpoint as a Predictor (`.model`, `.classes`, `.predict(inputs)`).
    `model`: for a run of `trainlab.fit` on your own nn.Module, a fresh instance to load it into.
    `.model` holds the averaged weights of a run trained with ema; `.predict` applies the run's
    test-time augmentation, or `tta` (none, flip, translate) when given."""
    return Predictor(run_or_checkpoint, best=best, device=device, model=model, tta=tta)


def format_predictions(results: list[Prediction]) -> str:
    lines = []
    for r in results:
        if r.error:
            lines.append(f"{r.input}: ERROR {r.error}")
        elif r.value is not None:
            lines.append(f"{r.input}: {', '.join(f'{v:.4g}' for v in r.value)}")
        else:
            lines.append(f"{r.input}: " + ", ".join(f"{c} {100 * p:.1f}%" for c, p in r.top))
    return "\n".join(lines)
