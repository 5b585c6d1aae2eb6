"""The training loop behind `fit()` (api.py): any nn.Module, epoch by epoch, with exact resume.

Read top to bottom: a `Trainer` takes the runtime (runtime.py); its named setup steps prepare the
data, the optimizer, the run folder (or restore a checkpoint) and the CUDA graph (graphs.py).
`Trainer.train_epoch` is the whole training loop and `eager_step` one optimizer step, which a
CUDA graph captures and replays where it can; `end_epoch` evaluates, logs and checkpoints.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from . import averaging, graphs, whitening
from . import checkpoint as ckpt
from .config import replace, to_dict
from .data import TensorData
from .distributed import all_sum, broadcast
from .errors import Diverged, Interrupted, UserError
from .interrupt import StopFlag
from .metrics import count_correct
from .optim import Schedule, build_optimizer, build_scheduler, param_groups
from .results import FitResult, Progress, epoch_line
from .progress import make_bar
from .runs import Run, unique_dir
from .checkpoint import first_line
from .runtime import Runtime, check_model_accepts, seed_everything


class Trainer:
    def __init__(self, rt: Runtime, train, val, *, classes: list[str], info: dict, state: dict | None = None,
                 run_dir: Path | None = None, stop: StopFlag | None = None, test=None):
        self.rt, self.cfg, self.classes, self.info, self.test = rt, rt.cfg, classes, info, test
        self.stop, self.stopping = stop or StopFlag(), False
        self.main = rt.dist.main  # only rank 0 prints and writes
        self.progress, self.history, self.last_eval = Progress(), [], {}
        self.setup_data(train, val)
        self.setup_whitening(fresh=not state)  # before the optimizer: a frozen weight stays out of it
        self.setup_optimizer()
        self.ema = averaging.attach(rt, self.cfg.ema)  # ema > 0: evaluation uses the averaged weights
        if state:
            self.restore(state)
        self.setup_run(run_dir, resumed=state is not None)
        self.setup_graph()
        if rt.threads_note and not self.cfg.quiet:
            self.say(rt.threads_note)
        if not state:
            self.run.log_graph_and_images(rt.model, self.example)
            seed_everything(self.cfg.seed)
        self.stop_step = self.progress.step + self.cfg.max_steps if self.cfg.max_steps else 0  # counts from here

    def setup_data(self, train, val) -> None:
        """Batches on the device; then one forward and loss on real batches, so a mismatch fails now."""
        self.train_batches, self.val_batches = self.rt.batches(train, val)
        self.example = self.train_batches.example(8)
        self.data_shape = list(train.x.shape[1:]) if isinstance(train, TensorData) else list(self.example.shape[1:])
        checks = [self.train_batches.sample(2, augmented=True), (self.val_batches or self.train_batches).sample(2)]
        check_model_accepts(self.rt, checks, self.classes)

    def setup_whitening(self, fresh: bool) -> None:
        """whiten=true: the first Conv2d whitens the training images' patches, frozen (whitening.py)."""
        if self.cfg.whiten:
            whitening.setup(self.rt, self.train_batches, fresh)

    def setup_optimizer(self) -> None:
        cfg = self.cfg
        self.optimizer = build_optimizer(param_groups(self.rt.model, cfg.bias_lr_scale), cfg.optimizer, cfg.lr,
                                         cfg.momentum, cfg.nesterov, cfg.weight_decay, cfg.betas)
        self.steps_per_epoch = math.ceil(len(self.train_batches) / cfg.grad_accum)
        scheduler, per_step = build_scheduler(
            self.optimizer, cfg.scheduler, epochs=cfg.epochs, steps_per_epoch=self.steps_per_epoch,
            step_size=cfg.step_size, gamma=cfg.gamma, milestones=cfg.milestones, max_lr=cfg.max_lr,
            lr_patience=cfg.lr_patience, mode="max",  # the score is val_acc, or -val_loss
            start_factor=cfg.start_factor, peak_at=cfg.peak_at, end_factor=cfg.end_factor)
        self.schedule = Schedule(self.optimizer, scheduler, per_step, cfg.warmup_steps)

    def setup_graph(self) -> None:
        """Whole-step CUDA graph capture (graphs.py; captured at the first step), or eager steps."""
        rt = self.rt
        reason = graphs.why_not(rt.device, rt.dist.active, rt.scaler.is_enabled(), self.optimizer)
        capture, line = graphs.decide(self.cfg.graph, reason, rt.device)
        modules = [rt.model] + ([self.ema.module] if self.ema else [])  # what a step changes, put back after warm-up
        self.graph = graphs.GraphStep(lambda group: self.eager_step(group, 1), modules, self.optimizer,
                                      rt.device) if capture else None
        if line and not self.cfg.quiet:
            self.say(line)

    def graph_failed(self, error: Exception) -> None:
        """Eager steps from now on (graph=auto, one line saying why), or the error (graph=true)."""
        self.graph = None
        why = f"capturing the training step failed: {first_line(error)}"
        if self.cfg.graph == "true":
            raise UserError(f"graph=true, but {why}; use graph=auto or graph=false") from error
        self.say(f"graph: eager steps ({why})")

    def setup_run(self, run_dir: Path | None, resumed: bool) -> None:
        """The run folder: a new unique one, or the resumed run's own (its rows after the checkpoint dropped)."""
        if not run_dir and self.main:
            run_dir = unique_dir(self.cfg.out_dir, self.cfg.name or self.cfg.recipe)
        path = Path(broadcast(run_dir, self.rt.dist))  # the folder rank 0 created
        self.cfg = replace(self.cfg, name=path.name, nproc=self.rt.dist.world)
        self.run = Run(path, to_dict(self.cfg), tensorboard=self.cfg.tensorboard, enabled=self.main)
        if resumed:
            self.run.keep_metrics_through(self.progress.epoch)

    def train_epoch(self) -> bool:
        """One pass over the training data. True: the epoch finished; False: stopped early (max_steps, Ctrl-C)."""
        cfg, p, batches = self.cfg, self.progress, self.train_batches
        n, accum = len(batches), cfg.grad_accum
        self.rt.model.train()
        group, pending = [], []  # micro-batches of the accumulation group; (step, loss, samples, correct) to read back
        self.bar = make_bar(n, batches.start_position, f"epoch {p.epoch + 1}/{cfg.epochs}", cfg.quiet or not self.main)
        started = time.perf_counter()
        for micro, (x, y) in enumerate(batches.epoch(), start=batches.start_position + 1):  # micro: 1..n
            group.append((x, y))
            if micro % accum and micro != n:
                continue  # accumulating: the update comes after grad_accum micro-batches (or the epoch's last)
            stats = self.step(group, first=micro - len(group) + 1)
            pending += [(p.step + 1, loss, len(yb), correct) for (loss, correct), (_, yb) in zip(stats, group)]
            group = []
            p.step += 1
            self.schedule.after_step()
            if p.step % cfg.log_every == 0:
                self.sync(pending, started)
            if cfg.save_every_steps and p.step % cfg.save_every_steps == 0:
                self.sync(pending, started)  # the checkpoint's progress must count every loss so far
                self.save("last")
            if self.stop_requested() or p.step == self.stop_step:
                self.end_window(pending, started)
                return False
        self.end_window(pending, started)
        return True

    def step(self, group: list, first: int) -> list:
        """One optimizer step over an accumulation group (micro-batches `first`, `first` + 1, ...):
        replayed from the CUDA graph when the group fits it, else eager. (loss, correct) per micro-batch."""
        if self.graph is not None:
            try:
                stats = self.graph(group)
            except Exception as e:
                if self.graph.replay is not None or isinstance(e, UserError):
                    raise  # only a failed capture (a host sync in the model, an unsupported op) falls back
                self.graph_failed(e)
                stats = None
            if stats is not None:
                return stats
        return self.eager_step(group, first)

    def eager_step(self, group: list, first: int) -> list:
        """zero_grad; forward, loss and backward of each micro-batch; clip; optimizer step. What the graph captures."""
        rt, opt = self.rt, self.optimizer
        opt.zero_grad(set_to_none=True)  # first: a captured backward then assigns fresh gradients
        stats = []
        for i, (x, y) in enumerate(group):
            with rt.autocast:
                out = rt.train_model(x)
            loss = rt.criterion(out.float(), y)  # the loss in fp32: BCE is not autocast-safe
            stats.append((loss.detach(), self.correct(out, y)))
            with contextlib.nullcontext() if i == len(group) - 1 else rt.no_sync():  # all-reduce once, at the last
                rt.scaler.scale(self.weighted(loss, first + i, len(y))).backward()
        if self.cfg.clip_grad_norm:
            rt.scaler.unscale_(opt)  # clip the true gradients (a no-op unless fp16 scaling is on)
            nn.utils.clip_grad_norm_(rt.model.parameters(), self.cfg.clip_grad_norm)
        rt.scaler.step(opt)  # plain opt.step() unless fp16 loss scaling is on
        rt.scaler.update()
        if self.ema:  # the moving average follows every optimizer step (averaging.py)
            self.ema.update()
        return stats

    def weighted(self, loss: torch.Tensor, micro: int, samples: int) -> torch.Tensor:
        """The loss whose gradient, averaged by DDP over ranks and summed over an accumulation
        group, equals the gradient of one batch of the whole group on one process."""
        if self.accum_mean:
            loss = loss / self.group_size(micro)
        if self.rt.dist.active:  # DDP divides by world: a mean loss gets its share of the global batch
            world = self.rt.dist.world
            share = samples * world / self.train_batches.global_size if self.cfg.reduction == "mean" else world
            loss = loss * share
        return loss

    def correct(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Right answers in a training batch, on the device (read back at the next sync); 0 for regression."""
        if not self.rt.criterion.is_classification:
            return torch.zeros((), dtype=torch.int64, device=y.device)
        return count_correct(out, y, self.rt.criterion)

    def stop_requested(self) -> bool:
        """Ctrl-C: at once in one process; under torchrun at the next sync, where the ranks agree on it."""
        return self.stopping if self.rt.dist.active else self.stop.requested

    @property
    def accum_mean(self) -> bool:
        """Mean-reduced losses are averaged over an accumulation group, so the update equals one
        batch grad_accum times larger; summed losses already add up."""
        return self.cfg.grad_accum > 1 and self.cfg.reduction == "mean"

    def group_size(self, micro: int) -> int:
        """Micro-batches in the accumulation group of micro-batch `micro` (the epoch's last may be short)."""
        first = (micro - 1) // self.cfg.grad_accum * self.cfg.grad_accum
        return min(self.cfg.grad_accum, len(self.train_batches) - first)

    def end_window(self, pending: list, started: float) -> None:
        self.sync(pending, started)
        self.progress.seconds += time.perf_counter() - started
        self.bar.close()

    def sync(self, pending: list, started: float) -> None:
        """Read the pending losses back (one host sync; under torchrun summed over ranks with the
        Ctrl-C flags), check them, log them, update the bar."""
        if not pending:
            return
        mean, dist, k = self.cfg.reduction == "mean", self.rt.dist, len(pending)
        sums = torch.stack([loss.double() * n if mean else loss.double() for _, loss, n, _ in pending])
        correct = torch.stack([c for *_, c in pending]).double().sum().view(1)
        counts = torch.tensor([n for _, _, n, _ in pending] + [self.stop.requested], dtype=torch.float64)
        packed = all_sum(torch.cat([sums, correct, counts.to(sums.device)]), dist).tolist()
        sums, counts, self.stopping = packed[:k], packed[k + 1:-1], packed[-1] > 0
        p = self.progress
        p.correct += int(packed[k])
        values = [s / c if mean else s for s, c in zip(sums, counts)]  # the loss of each step
        for (step, *_), value in zip(pending, values):
            if not math.isfinite(value):
                self.bar.close()  # the message goes on its own line, not onto the bar's
                raise Diverged(f"loss became {value} at step {step} (epoch {p.epoch + 1}); {self.kept()}")
        p.loss_sum += sum(sums)
        p.samples += int(sum(counts))
        # one TensorBoard point per window (at its last step): a scalar event costs ~75 us, a step here ~1.7 ms
        self.run.log_steps("train/loss", [(pending[-1][0], sum(values) / len(values))])
        elapsed = p.seconds + time.perf_counter() - started
        self.bar.update(len(pending))  # one entry per micro-batch
        self.bar.set_postfix(loss=f"{values[-1]:.4f}", samples_s=f"{p.samples / max(elapsed, 1e-9):.0f}")
        pending.clear()

    def kept(self) -> str:
        """What a diverged run leaves: its last good checkpoint, or (before the first one) only its
        record, config.yaml and status.json saying it diverged, for `trainlab runs` and `report`."""
        last = self.run.checkpoints / "last.pt"
        if last.exists():
            return f"stopped, the last good checkpoint is {last}"
        return f"stopped before any checkpoint was written; the run's record is in {self.run.path}"

    def end_epoch(self) -> dict:
        """Scheduler step, evaluation, a metrics row, best.pt (if better), then last.pt.

        best.pt goes first: a kill between the two writes resumes from the previous last.pt, which
        redoes this epoch and writes both again, so best.pt is never left stale."""
        p, cfg, rt = self.progress, self.cfg, self.rt
        lr = self.optimizer.param_groups[0]["lr"]
        p.epoch += 1
        target_scale = (self.info.get("table") or {}).get("target_scale")  # regression metrics in target units
        self.last_eval = rt.evaluate(self.val_batches, len(self.classes), target_scale) if self.val_batches else {}
        train_acc = p.correct / max(p.samples, 1) if rt.criterion.is_classification else None
        row = {"epoch": p.epoch, "step": p.step, "train_loss": p.loss_sum / max(p.samples, 1), "train_acc": train_acc,
               "val_loss": self.last_eval.get("loss"), "val_acc": self.last_eval.get("accuracy"), "lr": lr,
               "seconds": p.seconds}
        self.history.append(row)
        self.run.log_metrics(row)
        score = row["val_acc"] if row["val_acc"] is not None else -(row["val_loss"] or row["train_loss"])
        self.schedule.after_epoch(score if self.val_batches else None)
        improved = p.best is None or score > p.best
        p.best = score if improved else p.best
        self.check_patience(score)
        p.loss_sum, p.samples, p.correct, p.seconds = 0.0, 0, 0, 0.0
        if improved:
            self.save("best")
        if p.epoch % cfg.save_every == 0 or p.epoch == cfg.epochs or p.early_stopped:
            self.save("last")
            if not cfg.quiet:
                self.say(epoch_line(row, cfg.epochs, len(self.train_batches.source)))
        return row

    def check_patience(self, score: float) -> None:
        """Early stopping: count epochs whose score did not beat the reference by more than min_delta."""
        p, cfg = self.progress, self.cfg
        if not cfg.patience:
            return
        if p.patience_best is None or score > p.patience_best + cfg.min_delta:
            p.patience_best, p.stale_epochs = score, 0
            return
        p.stale_epochs += 1
        if p.stale_epochs >= cfg.patience:
            p.early_stopped = True
            what = "val_acc" if self.last_eval.get("accuracy") is not None else "val_loss"
            self.say(f"early stopping at epoch {p.epoch}: {what} has not improved by more than {cfg.min_delta:g} "
                     f"for {p.stale_epochs} epochs (patience={cfg.patience})")

    def state(self) -> dict:
        return {"model": self.rt.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.schedule.state_dict(),
                "scaler": self.rt.scaler.state_dict(), "rng": ckpt.rng_state(),
                "loader": self.train_batches.state_dict(), "progress": asdict(self.progress),
                "epoch": self.progress.epoch, "step": self.progress.step, "config": to_dict(self.cfg),
                "classes": self.classes, "info": self.info, "input_shape": list(self.example.shape[1:]),
                "metrics": self.last_eval, "data_shape": self.info.get("data_shape") or self.data_shape,
                **({"ema": self.ema.state_dict()} if self.ema else {})}  # the averaged weights eval/predict load

    def say(self, line: str) -> None:
        if self.main:
            print(line, flush=True)

    def save(self, which: str) -> Path:
        path = self.run.checkpoints / f"{which}.pt"
        if not self.main:  # every rank holds the same state; rank 0 writes it
            return path
        ckpt.save(self.state(), path)
        if which == "last" and self.cfg.keep_last:
            ckpt.keep_copy(path, self.run.checkpoints / f"step-{self.progress.step:07d}.pt", self.cfg.keep_last)
        return path

    def restore(self, state: dict) -> None:
        """Everything from a checkpoint loaded on the CPU; load_state_dict copies onto the device."""
        try:
            self.rt.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as e:  # torch's varied complaints
            raise UserError(f"the checkpoint does not fit model '{self.cfg.model}' with optimizer "
                            f"'{self.cfg.optimizer}': {first_line(e)}") from e
        averaging.restore(self.ema, state, self.cfg.ema)
        if state.get("scheduler"):
            self.schedule.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.rt.scaler.load_state_dict(state["scaler"])
        self.train_batches.load_state_dict(state["loader"])
        self.progress = Progress(**state["progress"])
        self.progress.early_stopped &= bool(self.cfg.patience)  # resumed with patience=0: train on
        ckpt.set_rng_state(state["rng"])  # last: nothing after this may draw random numbers

    @torch.no_grad()
    def plots(self) -> None:
        """plots/: curves, confusion matrix, per-class accuracy, and a grid of test predictions."""
        from .report import write_plots, prediction_sample

        sample = prediction_sample(self.rt, self.val_batches) if self.val_batches is not None else None
        write_plots(self.run.path, self.last_eval, self.classes, sample, *self.rt.normalization())

    def run_all(self) -> FitResult:
        cfg, p = self.cfg, self.progress
        if p.epoch >= cfg.epochs or p.early_stopped:
            why = "early stopping ended it" if p.early_stopped else "to train further"
            self.say(f"run {self.run.path} is already complete ({p.epoch}/{cfg.epochs} epochs); {why}: "
                  f"trainlab train --resume {self.run.path} epochs=N (N > {p.epoch})"
                  + (" patience=0" if p.early_stopped else ""))
            self.run.close()
            return FitResult(self.rt.evaluated, self.run.path, self.history, self.last_eval)
        try:
            while p.epoch < cfg.epochs and not p.early_stopped:
                finished = self.train_epoch()
                if finished:
                    self.end_epoch()
                if not finished or self.stop_requested() or (self.stop_step and p.step >= self.stop_step):
                    self.stopped_early()
                    break
        finally:
            self.run.close(self.progress)
        if cfg.plots and p.epoch and self.main:
            self.plots()
        test = self.evaluate_test() if self.test is not None and p.epoch >= cfg.epochs else {}
        self.say(f"run saved in {self.run.path}")
        return FitResult(self.rt.evaluated, self.run.path, self.history, self.last_eval, test)

    def evaluate_test(self) -> dict:
        """The finished model on the test data, kept apart from validation: one line, and the result."""
        target_scale = (self.info.get("table") or {}).get("target_scale")
        result = self.rt.evaluate(self.rt.eval_batches(self.test), len(self.classes), target_scale)
        acc = f", accuracy {100 * result['accuracy']:.2f}%" if "accuracy" in result else ""
        r2 = f", R² {result['r2']:.4f}" if result.get("r2") is not None else ""
        self.say(f"test: {result['samples']} samples, loss {result['loss']:.4f}{acc}{r2} (trainlab eval reports it)")
        return result

    def stopped_early(self) -> None:
        path = self.save("last")
        resume = f"resume with: trainlab train --resume {self.run.path}"
        if self.stop_requested():
            raise Interrupted(f"interrupted at step {self.progress.step}; checkpoint {path}; {resume}")
        self.say(f"stopped at max_steps={self.cfg.max_steps} (step {self.progress.step}); checkpoint {path}; {resume}")
