"""The handlers of the `trainlab` subcommands: each turns parsed arguments into one call of the
Python API and prints its result. Imports are inside the handlers so that `--help` stays fast."""
from __future__ import annotations

import json
import sys

from .errors import one_line


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
    from .config import parse_overrides
    from .report import format_eval, format_history, history_from_csv

    result, paths = api.report_run(args.run, best=args.best, **parse_overrides(args.overrides))
    history = history_from_csv(paths[0].parent.parent) if paths else []
    if history:
        print(format_history(history))
    print(format_eval(result))
    print("plots:\n" + "\n".join(f"  {p}" for p in paths))
    return 0


def cmd_report_html(args) -> int:
    from .config import parse_overrides
    from .html_report import build_report
    from .report import format_eval, format_history

    path, info, evaluation = build_report(args.run, best=args.best, plots=True,
                                          overrides=parse_overrides(args.overrides))
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

    results = load(args.run, best=args.best, tta=args.tta).predict(args.inputs, top_k=args.top_k)
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
