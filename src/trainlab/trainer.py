"""`fit()`: set up model, data, optimizer and run folder, then train epoch by epoch.

`Trainer.train_epoch` is the whole training loop. Everything else here is setup, the epoch's
end (scheduler, evaluation, metrics, checkpoints) and exact resume from a checkpoint.
"""
from __future__ import annotations

import collections
import math
import time
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from . import checkpoint as ckpt
from .config import Config, replace, to_dict
from .data import TensorData
from .data.plan import plan_batches
from .engine import (FitResult, Progress, StopFlag, amp_dtype, as_tensor_data, autocast, dataset_classes,
                     dataset_labels, evaluate, pick_device, seed_everything)
from .errors import Diverged, Interrupted, UserError
from .optim import Criterion, build_optimizer, build_scheduler
from .runs import Run, unique_dir


def check_model_accepts(model: nn.Module, samples: list, criterion: Criterion, classes: list[str]) -> None:
    """A forward pass and the loss on two samples of each (x, y) batch (training inputs after
    augmentation, evaluation inputs), so that a mismatch is a clear error, not a traceback mid-run."""
    model.eval()
    for x, y in samples:
        x, y = x[:2], y[:2]
        try:
            with torch.no_grad():
                out = model(x)
        except Exception as e:
            raise UserError(f"the model does not accept inputs of shape {tuple(x.shape[1:])}: "
                            f"{str(e).splitlines()[0]}") from None
        if criterion.index_targets and (out.dim() != 2 or out.shape[1] != len(classes)):
            raise UserError(f"the model outputs shape {tuple(out.shape[1:])} but the data have {len(classes)} classes")
        try:
            criterion(out.float(), y)
        except (RuntimeError, ValueError) as e:
            raise UserError(f"loss '{criterion.name}' does not fit the model's output shape {tuple(out.shape[1:])} "
                            f"and targets {y.dtype} {tuple(y.shape[1:])}: {str(e).splitlines()[0]}") from None


class Trainer:
    def __init__(self, model: nn.Module, train, val, cfg: Config, *, classes: list[str], info: dict,
                 resume: Path | None = None, stop: StopFlag | None = None):
        self.cfg, self.classes, self.info, self.stop = cfg, classes, info, stop or StopFlag()
        self.device = pick_device(cfg.device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.model = model.to(self.device)
        self.criterion = Criterion(cfg.loss, cfg.reduction, cfg.label_smoothing)
        self.train_batches, self.val_batches = plan_batches(
            train, val, transforms=cfg.transforms, mean=cfg.mean, std=cfg.std, batch_size=cfg.batch_size,
            eval_batch_size=cfg.eval_batch_size, seed=cfg.seed, drop_last=cfg.drop_last,
            channels_last=cfg.channels_last, workers=cfg.workers, model=self.model, device=self.device)
        self.amp = amp_dtype(cfg.amp, self.device)
        self.autocast = autocast(self.device, self.amp)  # reusable context: no per-step construction
        # fp16 needs loss scaling; bf16 and fp32 take the plain backward/step path
        self.scaler = torch.amp.GradScaler(self.device.type) if self.amp == torch.float16 else None
        self.example = self.train_batches.example(8)
        self.data_shape = list(train.x.shape[1:]) if isinstance(train, TensorData) else list(self.example.shape[1:])
        checks = [self.train_batches.sample(2, augmented=True), (self.val_batches or self.train_batches).sample(2)]
        check_model_accepts(self.model, checks, self.criterion, classes)
        self.optimizer = build_optimizer(self.model.parameters(), cfg.optimizer, cfg.lr, cfg.momentum,
                                         cfg.nesterov, cfg.weight_decay, cfg.betas)
        self.steps_per_epoch = math.ceil(len(self.train_batches) / cfg.grad_accum)
        self.scheduler, self.scheduler_per_step = build_scheduler(
            self.optimizer, cfg.scheduler, epochs=cfg.epochs, steps_per_epoch=self.steps_per_epoch,
            step_size=cfg.step_size, gamma=cfg.gamma, milestones=cfg.milestones, max_lr=cfg.max_lr)
        # mean-reduced losses are averaged over the accumulated batches, so the update equals one
        # batch grad_accum times larger; summed losses already add up.
        self.accum_mean = cfg.grad_accum > 1 and cfg.reduction == "mean"
        self.progress, self.history, self.last_eval = Progress(), [], {}
        state = ckpt.load(resume, self.device, resume=True) if resume else None  # every entry restore() reads
        path = resume.parent.parent if resume else unique_dir(cfg.out_dir, cfg.name or cfg.recipe)
        self.cfg = cfg = replace(cfg, name=path.name)
        self.run = Run(path, to_dict(cfg), tensorboard=cfg.tensorboard)
        if state:
            self.restore(state)
        else:
            self.run.log_graph_and_images(self.model, self.example)
            seed_everything(cfg.seed)
        self.stop_step = self.progress.step + cfg.max_steps if cfg.max_steps else 0  # max_steps counts from here

    def accum_divisor(self, position: int) -> int:
        """Batches in the accumulation group of batch `position` (the epoch's last group may be short)."""
        first = (position - 1) // self.cfg.grad_accum * self.cfg.grad_accum
        return min(self.cfg.grad_accum, len(self.train_batches) - first)

    def train_epoch(self) -> bool:
        """One pass over the training data; False if it stopped early (max_steps or Ctrl-C)."""
        cfg, p, opt = self.cfg, self.progress, self.optimizer
        loader = self.train_batches
        self.model.train()
        pending = []  # (step, loss on the device, samples): read back every log_every steps
        self.bar = tqdm(total=len(loader), initial=loader.start_position, desc=f"epoch {p.epoch + 1}/{cfg.epochs}",
                        unit="batch", leave=False, dynamic_ncols=True)
        started = time.perf_counter()
        for x, y in loader.epoch():
            with self.autocast:
                out = self.model(x)
            loss = self.criterion(out.float() if self.amp else out, y)  # fp32 loss: BCE is not autocast-safe
            pending.append((p.step + 1, loss.detach(), len(y)))
            if self.accum_mean:
                loss = loss / self.accum_divisor(loader.position)
            (self.scaler.scale(loss) if self.scaler else loss).backward()
            if loader.position % cfg.grad_accum and loader.position < len(loader):
                continue  # accumulating: the update comes after grad_accum batches
            if self.scaler:
                self.scaler.step(opt)
                self.scaler.update()
            else:
                opt.step()
            opt.zero_grad(set_to_none=True)
            p.step += 1
            if self.scheduler_per_step:
                self.scheduler.step()
            if p.step % cfg.log_every == 0:
                self.sync(pending, started)
            if self.stop.requested or p.step == self.stop_step:
                break
        self.sync(pending, started)
        p.seconds += time.perf_counter() - started
        self.bar.close()
        return loader.position == 0

    def sync(self, pending: list, started: float) -> None:
        """Read the pending losses back (one host sync), check them, log them, update the bar."""
        if not pending:
            return
        values = torch.stack([loss for _, loss, _ in pending]).float().tolist()
        p = self.progress
        for (step, _, n), value in zip(pending, values):
            if not math.isfinite(value):
                last = self.run.checkpoints / "last.pt"
                kept = f"the last good checkpoint is {last}" if last.exists() else "no checkpoint was written before it"
                raise Diverged(f"loss became {value} at step {step} (epoch {p.epoch + 1}); stopped, {kept}")
            p.loss_sum += value * n if self.cfg.reduction == "mean" else value
            p.samples += n
        # one TensorBoard point per window (at its last step): a scalar event costs ~75 us, a step here ~1.7 ms
        self.run.log_steps("train/loss", [(pending[-1][0], sum(values) / len(values))])
        elapsed = p.seconds + time.perf_counter() - started
        self.bar.update(len(pending))  # one entry per batch
        self.bar.set_postfix(loss=f"{values[-1]:.4f}", samples_s=f"{p.samples / max(elapsed, 1e-9):.0f}")
        pending.clear()

    def end_epoch(self) -> dict:
        """Scheduler step, evaluation, a metrics row, last.pt and (if better) best.pt."""
        p, cfg = self.progress, self.cfg
        lr = self.optimizer.param_groups[0]["lr"]
        p.epoch += 1
        if self.scheduler is not None and not self.scheduler_per_step:
            self.scheduler.step()
        self.last_eval = (evaluate(self.model, self.val_batches, self.criterion, len(self.classes), self.amp)
                          if self.val_batches else {})
        row = {"epoch": p.epoch, "step": p.step, "train_loss": p.loss_sum / max(p.samples, 1),
               "val_loss": self.last_eval.get("loss"), "val_acc": self.last_eval.get("accuracy"), "lr": lr,
               "seconds": p.seconds}
        self.history.append(row)
        self.run.log_metrics(row)
        score = row["val_acc"] if row["val_acc"] is not None else -(row["val_loss"] or row["train_loss"])
        improved = p.best is None or score > p.best
        p.best = score if improved else p.best
        p.loss_sum, p.samples, p.seconds = 0.0, 0, 0.0
        if p.epoch % cfg.save_every == 0 or p.epoch == cfg.epochs:
            self.save("last")
            print(epoch_line(row, cfg.epochs, len(self.train_batches.source)), flush=True)
        if improved:
            self.save("best")
        return row

    def state(self) -> dict:
        sched = self.scheduler.state_dict() if self.scheduler is not None else None
        if sched and isinstance(sched.get("milestones"), collections.Counter):
            sched["milestones"] = dict(sched["milestones"])  # Counter is not a weights_only type
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "scheduler": sched,
                "scaler": self.scaler.state_dict() if self.scaler else None, "rng": ckpt.rng_state(), "loader": self.train_batches.state_dict(),
                "progress": asdict(self.progress), "epoch": self.progress.epoch, "step": self.progress.step,
                "config": to_dict(self.cfg), "classes": self.classes, "info": self.info,
                "input_shape": list(self.example.shape[1:]), "metrics": self.last_eval,
                "data_shape": self.info.get("data_shape") or self.data_shape}

    def save(self, which: str) -> Path:
        path = self.run.checkpoints / f"{which}.pt"
        ckpt.save(self.state(), path)
        return path

    def restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"]:
            sched = dict(state["scheduler"])
            if "milestones" in sched:
                sched["milestones"] = collections.Counter(sched["milestones"])
            self.scheduler.load_state_dict(sched)
        if state.get("scaler") and self.scaler:
            self.scaler.load_state_dict(state["scaler"])
        self.train_batches.load_state_dict(state["loader"])
        self.progress = Progress(**state["progress"])
        ckpt.set_rng_state(state["rng"])  # last: nothing after this may draw random numbers

    @torch.no_grad()
    def plots(self) -> None:
        """plots/: curves, confusion matrix, per-class accuracy, and a grid of test predictions."""
        from .data.transforms import normalize_args, parse_all
        from .report import write_plots

        sample = None
        if self.val_batches is not None and self.criterion.is_classification:
            self.model.eval()
            x, y = next(iter(self.val_batches.epoch()))
            x, y = x[:16], y[:16]
            sample = (x.float().cpu(), y.cpu(), self.criterion.predict(self.model(x)).cpu())
            self.val_batches.position = 0  # the pass above was only peeked at
        mean, std = normalize_args(parse_all(self.cfg.transforms), self.cfg.mean, self.cfg.std)
        write_plots(self.run.path, self.last_eval, self.classes, sample, mean, std)

    def run_all(self) -> FitResult:
        cfg, p = self.cfg, self.progress
        try:
            while p.epoch < cfg.epochs:
                finished = self.train_epoch()
                if finished:
                    self.end_epoch()
                if not finished or self.stop.requested or (self.stop_step and p.step >= self.stop_step):
                    path = self.save("last")
                    if self.stop.requested:
                        raise Interrupted(f"interrupted at step {p.step}; checkpoint {path}; "
                                          f"resume with: trainlab train --resume {self.run.path}")
                    print(f"stopped at max_steps={cfg.max_steps} (step {p.step}); checkpoint {path}")
                    break
        finally:
            self.run.close()
        if cfg.plots and self.run.enabled and p.epoch:
            self.plots()
        print(f"run saved in {self.run.path}")
        return FitResult(self.model, self.run.path, self.history, self.last_eval)


def epoch_line(row: dict, epochs: int, samples: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}", f"step {row['step']}", f"train_loss {row['train_loss']:.4f}"]
    if row["val_loss"] is not None:
        parts.append(f"val_loss {row['val_loss']:.4f}")
    if row["val_acc"] is not None:
        parts.append(f"val_acc {100 * row['val_acc']:.2f}%")
    parts += [f"lr {row['lr']:.3g}", f"{row['seconds']:.2f}s ({samples / max(row['seconds'], 1e-9):.0f} samples/s)"]
    return "  ".join(parts)


def fit(model: nn.Module, train_data, val_data=None, *, config: Config | None = None, resume: str | Path | None = None,
        classes: list[str] | None = None, info: dict | None = None, **overrides) -> FitResult:
    """Train `model` on `train_data` ((x, y) tensors or TensorData), evaluating on `val_data`.

    `train_data` may also be any torch Dataset of (input, class index), e.g. the notes' `ants + bees`;
    it then goes through a DataLoader with the config's `transforms`. Keyword overrides are config
    fields (epochs=3, lr=0.1, loss="mse", ...). Returns the trained model, the run folder and the
    per-epoch history.
    """
    cfg = config or Config(recipe="api", name=type(model).__name__.lower(), model="custom", dataset="custom")
    cfg = replace(cfg, **overrides) if overrides else cfg
    train = as_tensor_data(train_data, "train_data")
    val = as_tensor_data(val_data, "val_data") if val_data is not None else None
    classes = classes or dataset_classes(train)
    if classes is None and cfg.loss in ("cross_entropy", "nll"):
        labels = dataset_labels(train)
        if labels.is_floating_point():
            raise UserError(f"loss={cfg.loss} needs integer class labels, but the targets are {labels.dtype} "
                            "(a regression): use loss=mse or loss=l1")
        classes = [str(i) for i in range(int(labels.max()) + 1)]
    elif classes is None and cfg.loss in ("bce", "bce_logits"):
        classes = ["0", "1"]
    with StopFlag() as stop:
        trainer = Trainer(model, train, val, cfg, classes=classes or [], info=info or {},
                          resume=Path(resume) if resume else None, stop=stop)
        return trainer.run_all()
