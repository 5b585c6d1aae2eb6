"""The `trainlab` command line: ls, train, config, eval, report, compare, runs, predict, export, summary,
lr-find, data stats, example.

Imports are lazy so that `trainlab --help` answers without loading torch. User errors print one
line `trainlab: error: ...` and exit non-zero; Ctrl-C during training saves a checkpoint and
exits 130; a reader that stops early (`trainlab eval RUN | head`) ends the command quietly with
exit 141, as a shell reports a command stopped by SIGPIPE.
"""
from __future__ import annotations

import argparse
import os
import sys

from .commands import (cmd_compare, cmd_config, cmd_data, cmd_eval, cmd_example, cmd_export, cmd_lr_find, cmd_ls,
                       cmd_predict, cmd_report, cmd_runs, cmd_summary, cmd_train, raise_user)
from .errors import one_line

BROKEN_PIPE_EXIT = 141  # 128 + SIGPIPE: what the shell reports for `yes | head`

EPILOG = """examples:
  trainlab train                         train the default recipe (mnist-cnn on bundled MNIST)
  trainlab train mnist-mlp epochs=3 lr=0.05
  trainlab train --help                  every config key: type, default, meaning
  trainlab config mnist-mlp epochs=3     the resolved config as YAML, without training
  trainlab train my_recipe.yaml device=cpu
  trainlab train --resume runs/mnist-cnn
  trainlab eval runs/mnist-cnn --json
  trainlab report runs/mnist-cnn                 plots/ and the per-epoch table
  trainlab report runs/mnist-cnn --html          ... and runs/mnist-cnn/report.html
  trainlab compare runs/mnist-cnn runs/mnist-mlp --html compare.html
  trainlab runs                                  every run under runs/ with its status
  trainlab predict runs/mnist-cnn digit.png photos/ --top-k 2
  trainlab export runs/mnist-cnn --format onnx
  trainlab summary cifar10-quick
  trainlab lr-find mnist-cnn                     suggest a learning rate, plot lr_find.png
  trainlab data stats cifar10
  trainlab train image-folder data_path=DIR      your own images: DIR/<label>/*.jpg
  trainlab train table data_path=FILE.csv target=COLUMN"""


class Parser(argparse.ArgumentParser):
    """argparse with an epilog built only when help is shown, so that a plain run never loads it."""

    lazy_epilog = None

    def format_help(self) -> str:
        if self.lazy_epilog:
            self.epilog = self.lazy_epilog()
        return super().format_help()


def _train_epilog() -> str:
    from .confighelp import train_epilog

    return train_epilog()


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    raw = argparse.RawDescriptionHelpFormatter
    parser = Parser(prog="trainlab", description="Train the PyTorch study notes' models, fast.",
                    epilog=EPILOG, formatter_class=raw)
    parser.add_argument("--version", action="version", version=f"trainlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("ls", help="list recipes, models and datasets")
    p = sub.add_parser("train", help="train a recipe: trainlab train [RECIPE_OR_FILE] [key=value ...]",
                       formatter_class=raw, usage="trainlab train [RECIPE_OR_FILE] [key=value ...] [--resume RUN]")
    p.lazy_epilog = _train_epilog
    p.add_argument("args", nargs="*", metavar="RECIPE_OR_KEY=VALUE")
    p.add_argument("--resume", metavar="RUN", help="continue a run folder or checkpoint exactly where it stopped")
    p = sub.add_parser("config", help="print the resolved config (YAML) of a recipe and overrides, without training")
    p.add_argument("args", nargs="*", metavar="RECIPE_OR_KEY=VALUE")
    p = sub.add_parser("eval", help="evaluate a run or checkpoint on its test data")
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--best", action="store_true", help="use best.pt instead of last.pt")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_run_commands(sub)
    return parser


def add_run_commands(sub) -> None:
    """Subcommands that work on finished runs, and the tools."""
    p = sub.add_parser("report", help="evaluate a run, (re)write its plots and print its per-epoch metrics")
    p.add_argument("run", metavar="RUN")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="evaluation settings, e.g. tta=flip")
    p.add_argument("--best", action="store_true", help="use best.pt instead of last.pt")
    p.add_argument("--html", action="store_true", help="also write RUN/report.html, one self-contained page")
    p = sub.add_parser("compare", help="runs side by side: config differences, final metrics, curves")
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("--html", metavar="OUT", help="also write the comparison as one HTML page to OUT")
    p = sub.add_parser("runs", help="a table of the runs in DIR (default runs/): status, epochs, best metric")
    p.add_argument("dir", nargs="?", default="runs", metavar="DIR")
    p = sub.add_parser("predict", help="predict image files, folders of images or CSV rows with a trained run")
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("--top-k", type=int, default=3, help="classes to show per input (default 3)")
    p.add_argument("--tta", choices=["none", "flip", "translate"],
                   help="test-time augmentation of image inputs (default: the run's own tta)")
    p.add_argument("--best", action="store_true", help="use best.pt instead of last.pt")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = sub.add_parser("export", help="export a run's model as TorchScript, ONNX or safetensors, checked "
                                      "against the checkpoint")
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("--format", required=True, choices=["torchscript", "onnx", "safetensors"])
    p.add_argument("--out", metavar="PATH", help="output file (default: RUN/export/model.pt|.onnx|.safetensors)")
    p.add_argument("--best", action="store_true", help="use best.pt instead of last.pt")
    p = sub.add_parser("summary", help="layer output shapes and parameter counts of a model or recipe")
    p.add_argument("name", metavar="MODEL_OR_RECIPE")
    p = sub.add_parser("lr-find", help="sweep the learning rate on a recipe and suggest one (writes lr_find.png)")
    p.add_argument("args", nargs="*", metavar="RECIPE_OR_KEY=VALUE")
    p.add_argument("--steps", type=int, default=200, help="optimizer steps of the sweep (default 200)")
    p.add_argument("--start-lr", type=float, default=1e-7)
    p.add_argument("--end-lr", type=float, default=10.0)
    p.add_argument("--out", default="lr_find.png", help="the plot's path (default ./lr_find.png)")
    p = sub.add_parser("example", help="run a demonstration of the notes (no NAME lists them)")
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("--out", metavar="DIR", help="folder for its plots and files (default: runs/examples/NAME)")
    p = sub.add_parser("data", help="dataset tools: trainlab data stats DATASET_OR_RECIPE [key=value ...]")
    p.add_argument("action", choices=["stats"])
    p.add_argument("dataset", metavar="DATASET_OR_RECIPE")
    p.add_argument("overrides", nargs="*", metavar="key=value")


KEY_VALUE_COMMANDS = ("train", "config", "eval", "data", "report")


def check_option_style(argv: list[str]) -> None:
    """`--epochs 3` or `--learning-rate=0.1` where a config key is meant: say to write `epochs=3`."""
    if not argv or argv[0] not in KEY_VALUE_COMMANDS or not any(w.startswith("--") for w in argv):
        return
    from .config import ALIASES, FIELDS

    for i, word in enumerate(argv):
        name, eq, value = word[2:].partition("=")
        key = name.replace("-", "_")
        key = key if key in FIELDS else ALIASES.get(key.lower(), "")
        if not word.startswith("--") or not key or key in ("resume", "best", "json"):
            continue
        if not eq:
            value = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("-") else "VALUE"
        raise_user(f"config keys are key=value words, not options: use {key}={value}")


def _close_progress_bars() -> None:
    """Clear a progress bar left mid-line, so that an error message starts on its own line."""
    progress = sys.modules.get(f"{__package__}.progress")
    if progress is not None:
        progress.close_bars()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    from .errors import Interrupted, UserError

    try:
        check_option_style(argv)
    except UserError as e:
        print(f"trainlab: error: {e}", file=sys.stderr)
        return e.exit_code
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    handler = {"ls": cmd_ls, "train": cmd_train, "config": cmd_config, "eval": cmd_eval, "summary": cmd_summary,
               "data": cmd_data, "predict": cmd_predict, "report": cmd_report, "export": cmd_export,
               "lr-find": cmd_lr_find, "compare": cmd_compare, "runs": cmd_runs,
               "example": cmd_example}[args.command]
    from .distributed import is_main, shutdown

    try:
        code = handler(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the try, not at interpreter exit
        return code
    except BrokenPipeError:
        if not _stdout_broken():
            raise  # a pipe other than stdout: a real failure, not a reader that stopped early
        return _stdout_closed()
    except UserError as e:  # under torchrun every rank meets the same user error: rank 0 says it
        _close_progress_bars()
        if is_main():
            print(f"trainlab: error: {one_line(e)}", file=sys.stderr)
        return e.exit_code
    except Interrupted as e:
        _close_progress_bars()
        if is_main():
            print(f"trainlab: {one_line(e)}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        _close_progress_bars()
        print("trainlab: interrupted", file=sys.stderr)
        return 130
    finally:
        shutdown()  # leave the torchrun process group cleanly (nothing outside torchrun)


def _stdout_broken() -> bool:
    """Whether stdout is a pipe whose reader has gone (poll reports an error on its write end)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no poll() on this platform, or no descriptor
        return True


def _stdout_closed() -> int:
    """The reader of stdout went away: point stdout at devnull so that Python's final flush does
    not fail again (the recipe of the `signal` module's docs), and exit quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (captured in tests)
        pass
    return BROKEN_PIPE_EXIT


if __name__ == "__main__":
    sys.exit(main())
