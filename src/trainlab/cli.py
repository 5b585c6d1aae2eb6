"""The `trainlab` command line: ls, train, eval, report, predict, summary, data stats, example.

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
  trainlab train my_recipe.yaml device=cpu
  trainlab train --resume runs/mnist-cnn
  trainlab eval runs/mnist-cnn --json
  trainlab report runs/mnist-cnn                 plots/ and the per-epoch table
  trainlab predict runs/mnist-cnn digit.png photos/ --top-k 2
  trainlab summary cifar10-quick
  trainlab data stats cifar10
  trainlab train image-folder data_path=DIR      your own images: DIR/<label>/*.jpg
  trainlab train table data_path=FILE.csv target=COLUMN"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trainlab", description="Train the PyTorch study notes' models, fast.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("ls", help="list recipes, models and datasets")
    p = sub.add_parser("train", help="train a recipe: trainlab train [RECIPE_OR_FILE] [key=value ...]")
    p.add_argument("args", nargs="*", metavar="RECIPE_OR_KEY=VALUE")
    p.add_argument("--resume", metavar="RUN", help="continue a run folder or checkpoint exactly where it stopped")
    p = sub.add_parser("eval", help="evaluate a run or checkpoint on its test data")
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--best", action="store_true", help="use best.pt instead of last.pt")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = sub.add_parser("report", help="evaluate a run, (re)write its plots and print its per-epoch metrics")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--best", action="store_true", help="use best.pt instead of last.pt")
    p = sub.add_parser("predict", help="predict image files, folders of images or CSV rows with a trained run")
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("--top-k", type=int, default=3, help="classes to show per input (default 3)")
    p.add_argument("--best", action="store_true", help="use best.pt instead of last.pt")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = sub.add_parser("summary", help="layer output shapes and parameter counts of a model or recipe")
    p.add_argument("name", metavar="MODEL_OR_RECIPE")
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
    from .models import MODELS

    print("recipes:")
    for name in recipe_names():
        r = load_recipe(name)
        print(f"  {name:<22} model={r.get('model', '-')} dataset={r.get('dataset', '-')}")
    print("models:")
    for name in sorted(MODELS):
        print(f"  {name:<22} {MODELS[name].doc}")
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


def cmd_train(args) -> int:
    from . import api
    from .config import parse_overrides

    words = list(args.args)
    recipe = words.pop(0) if words and "=" not in words[0] else None
    overrides = parse_overrides(words)
    if "recipe" in overrides and not args.resume:  # `recipe=X` names the recipe, as the first word does
        if recipe:
            raise_user(f"two recipes given: '{recipe}' and recipe={overrides['recipe']}")
        recipe = overrides.pop("recipe")
    if args.resume:
        if recipe:
            raise_user(f"--resume takes the recipe from the checkpoint; drop '{recipe}'")
        api.resume(args.resume, **overrides)
    else:
        api.train(recipe or "mnist-cnn", **overrides)
    return 0


def cmd_eval(args) -> int:
    from . import api
    from .config import parse_overrides
    from .report import format_eval

    result = api.evaluate_run(args.run, best=args.best, **parse_overrides(args.overrides))
    print(json.dumps(result, indent=2) if args.json else format_eval(result))
    return 0


def cmd_report(args) -> int:
    from . import api
    from .report import format_eval, format_history, history_from_csv

    result, paths = api.report_run(args.run, best=args.best)
    history = history_from_csv(paths[0].parent.parent) if paths else []
    if history:
        print(format_history(history))
    print(format_eval(result))
    print("plots:\n" + "\n".join(f"  {p}" for p in paths))
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


def cmd_summary(args) -> int:
    from .config import load_recipe, recipe_names
    from .models import MODELS, build_model, get_model_entry
    from .summary import format_summary

    name = args.name
    if name not in MODELS and (name in recipe_names() or name.endswith((".yaml", ".yml"))):
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    handler = {"ls": cmd_ls, "train": cmd_train, "eval": cmd_eval, "summary": cmd_summary, "data": cmd_data, "predict": cmd_predict,
               "report": cmd_report,
               "example": cmd_example}[args.command]
    from .errors import Interrupted, UserError

    try:
        code = handler(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the try, not at interpreter exit
        return code
    except BrokenPipeError:
        if not _stdout_broken():
            raise  # a pipe other than stdout: a real failure, not a reader that stopped early
        return _stdout_closed()
    except UserError as e:
        print(f"trainlab: error: {one_line(e)}", file=sys.stderr)
        return e.exit_code
    except Interrupted as e:
        print(f"trainlab: {one_line(e)}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("trainlab: interrupted", file=sys.stderr)
        return 130


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
