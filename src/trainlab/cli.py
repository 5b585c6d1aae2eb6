"""The `trainlab` command line: ls, train, config, eval, report, compare, runs, predict, export, summary,
lr-find, data stats, example.

Imports are lazy so that `trainlab --help` answers without loading torch. User errors print one
line `trainlab: error: ...` and exit non-zero; Ctrl-C during training saves a checkpoint and
exits 130; a reader that stops early (`trainlab eval RUN | head`) ends the command quietly with
exit 141, as a shell reports a command stopped by SIGPIPE.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

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
    p = sub.add_parser("report", help="evaluate a run, (re)write its plots and print its per-epoch metrics")
    p.add_argument("run", metavar="RUN")
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
    return parser


def cmd_ls(args) -> int:
    from .config import load_recipe, recipe_names
    from .data import DATASET_DOCS, dataset_names
    from .registry import load_builtin_models

    print("recipes:")
    for name in recipe_names():
        r = load_recipe(name)
        print(f"  {name:<22} model={r.get('model', '-')} dataset={r.get('dataset', '-')}")
    print("models:")
    models = load_builtin_models()
    for name in sorted(models):
        print(f"  {name:<22} {models[name].doc}")
    print("datasets:")
    for name in dataset_names():
        print(f"  {name:<22} {DATASET_DOCS[name]}")
    from .examples import list_examples

    print("examples (trainlab example NAME):")
    for name, summary in list_examples():
        print(f"  {name:<22} {summary}")
    return 0


def cmd_example(args) -> int:
    from .examples.__main__ import main as examples_main

    return examples_main([a for a in (args.name,) if a] + (["--out", args.out] if args.out else []))


def split_recipe(words: list[str], command: str) -> tuple[str | None, dict]:
    """[RECIPE] key=value ... -> (recipe or None, overrides); a recipe after a key=value is an error
    that shows the right order."""
    from .config import parse_overrides

    words = list(words)
    recipe = words.pop(0) if words and "=" not in words[0] else None
    late = [w for w in words if "=" not in w]
    if late and recipe is None:
        order = " ".join([late[0]] + [w for w in words if w != late[0]])
        raise_user(f"the recipe comes first: trainlab {command} {order}")
    overrides = parse_overrides(words)
    if "recipe" in overrides:  # `recipe=X` names the recipe, as the first word does
        if recipe:
            raise_user(f"two recipes given: '{recipe}' and recipe={overrides['recipe']}")
        recipe = overrides.pop("recipe")
    return recipe, overrides


def cmd_train(args) -> int:
    from . import api

    recipe, overrides = split_recipe(args.args, "train")
    nproc = requested_processes(args, overrides)
    if nproc > 1:  # start torchrun with the same command line; it runs this function once per rank
        from .distributed import launch

        return launch(["train", *args.args, *(["--resume", args.resume] if args.resume else [])], nproc)
    if args.resume:
        if recipe:
            raise_user(f"--resume takes the recipe from the checkpoint; drop '{recipe}'")
        api.resume(args.resume, **overrides)
    else:
        api.train(recipe or "mnist-cnn", **overrides)
    return 0


def cmd_config(args) -> int:
    from .confighelp import resolved_yaml

    recipe, overrides = split_recipe(args.args, "config")
    print(resolved_yaml(recipe or "mnist-cnn", overrides), end="")
    return 0


def requested_processes(args, overrides: dict) -> int:
    """nproc to start here: 0 under torchrun (already started), else nproc= or the resumed run's."""
    from . import checkpoint as ckpt
    from .config import convert
    from .distributed import from_env

    if from_env().active:
        return 0
    if "nproc" in overrides:
        return convert("nproc", overrides["nproc"])
    if args.resume:
        return int(ckpt.load(ckpt.resolve(args.resume))["config"].get("nproc", 1))
    return 1


def cmd_eval(args) -> int:
    from . import api
    from .config import parse_overrides
    from .report import eval_json, format_eval

    result = api.evaluate_run(args.run, best=args.best, **parse_overrides(args.overrides))
    print(json.dumps(eval_json(result)) if args.json else format_eval(result))
    return 0


def cmd_export(args) -> int:
    from .exporter import export

    done = export(args.run, args.format, out=args.out, best=args.best)
    print(done.describe())
    return 0


def cmd_report(args) -> int:
    if args.html:
        return cmd_report_html(args)
    from . import api
    from .report import format_eval, format_history, history_from_csv

    result, paths = api.report_run(args.run, best=args.best)
    history = history_from_csv(paths[0].parent.parent) if paths else []
    if history:
        print(format_history(history))
    print(format_eval(result))
    print("plots:\n" + "\n".join(f"  {p}" for p in paths))
    return 0


def cmd_report_html(args) -> int:
    from .html_report import build_report
    from .report import format_eval, format_history

    path, info, evaluation = build_report(args.run, best=args.best, plots=True)
    if info.history:
        print(format_history(info.history))
    print(format_eval(evaluation.result) if "dataset" in evaluation.result else evaluation.note)
    if evaluation.plots:
        print("plots:\n" + "\n".join(f"  {p}" for p in evaluation.plots))
    print(f"html: {path}")
    return 0


def cmd_compare(args) -> int:
    from .compare import format_compare, load_runs, write_html

    infos = load_runs(args.runs)
    print(format_compare(infos))
    if args.html:
        print(f"html: {write_html(infos, args.html)}")
    return 0


def cmd_runs(args) -> int:
    from .runlist import format_runs, list_runs

    print(format_runs(list_runs(args.dir), args.dir))
    return 0


def cmd_predict(args) -> int:
    from .predict import format_predictions, load

    results = load(args.run, best=args.best).predict(args.inputs, top_k=args.top_k)
    failed = [r for r in results if r.error]
    if args.json:  # every input has its entry, errors included: the JSON is data for a program
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:  # predictions only: each error is printed once, below, on stderr
        good = format_predictions([r for r in results if not r.error])
        if good:
            print(good)
    for r in failed:
        print(f"trainlab: error: {one_line(r.error)}", file=sys.stderr)
    return 1 if failed else 0


def cmd_lr_find(args) -> int:
    from .config import make_config, parse_overrides
    from .lrfind import plot, sweep

    words = list(args.args)
    recipe = words.pop(0) if words and "=" not in words[0] else "mnist-cnn"
    if args.steps < 3:
        raise_user(f"--steps must be at least 3, got {args.steps}")
    cfg = make_config(recipe, parse_overrides(words))
    result = sweep(cfg, args.start_lr, args.end_lr, args.steps)
    path = plot(result, args.out, f"lr-find: {cfg.recipe}")
    print(f"swept lr {result.lrs[0]:.1e} .. {result.lrs[-1]:.1e} over {len(result.lrs)} steps")
    print(f"suggested lr: {result.suggestion:.2e} (steepest fall of the smoothed loss); plot: {path}")
    return 0


def cmd_summary(args) -> int:
    from .config import load_recipe, recipe_names
    from .registry import build_model, get_model_entry, load_builtin_models
    from .summary import format_summary

    name = args.name
    if name not in load_builtin_models() and (name in recipe_names() or name.endswith((".yaml", ".yml"))):
        name = load_recipe(name).get("model", "mnist-cnn")
    entry = get_model_entry(name)
    print(format_summary(build_model(name), entry.input_shape, name))
    return 0


def cmd_data(args) -> int:
    from .api import load_data
    from .config import make_config, parse_overrides, recipe_names
    from .data import TensorData
    from .data.stats import channel_stats

    overrides = parse_overrides(args.overrides)
    if args.dataset in recipe_names() or args.dataset.endswith((".yaml", ".yml")):
        cfg = make_config(args.dataset, overrides)
    else:
        cfg = make_config(None, {**overrides, "dataset": args.dataset})
    splits = load_data(cfg)
    if "table" in splits.info:  # the raw columns, not the standardised / one-hot features
        from .data.colstats import format_column_stats

        print(format_column_stats(splits.source, splits.info["table"]))
        return 0
    if not isinstance(splits.train, TensorData):
        raise_user(f"{cfg.dataset} is decoded per sample (over max_resident_mb); raise max_resident_mb to compute stats")
    mean, std = channel_stats(splits.train)
    what = "channel" if splits.train.x.dim() == 4 else "feature"
    print(f"{cfg.dataset} train split: {len(splits.train)} samples, per-{what} statistics")
    print(f"mean: [{', '.join(f'{v:.4f}' for v in mean)}]")
    print(f"std:  [{', '.join(f'{v:.4f}' for v in std)}]")
    print(f"as overrides: mean=[{','.join(f'{v:.4f}' for v in mean)}] std=[{','.join(f'{v:.4f}' for v in std)}]")
    return 0


def raise_user(message: str) -> None:
    from .errors import UserError

    raise UserError(message)


KEY_VALUE_COMMANDS = ("train", "config", "eval", "data")


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


def one_line(e: BaseException) -> str:
    """The message on one line: a value quoted in it (a CSV cell, a file name) may hold newlines."""
    return str(e).replace("\r", "\\r").replace("\n", "\\n")


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
