"""Property-based fault tests: whatever a user or a damaged file supplies, trainlab ends in a clean
UserError or a success: never a traceback, never a file outside the run's folder.

Covers config values (`config.convert`, the CLI, and real short `fit` runs), checkpoint dicts
(`checkpoint.validate`/`load`, and resume from a mutated checkpoint) and CSV contents
(`data.table`). Each property runs 25-100 examples so the file stays fast.
"""
import contextlib
import copy
import io
import os
import tempfile
from pathlib import Path
from unittest import mock

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from torch import nn

import trainlab
from conftest import tiny_run
from trainlab import checkpoint
from trainlab.cli import main
from trainlab.config import FIELDS, TYPES, convert
from trainlab.data.table import read_table, table_splits, transform
from trainlab.errors import UserError

FAST = settings(max_examples=100, deadline=None, database=None)
SLOW = settings(max_examples=25, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12),
                    st.sampled_from(["nan", "inf", "-inf", ".nan", "1e999", "..", "/", "../x", "[1,", "{a: 1}",
                                     "!!python/object:os.system", "0x10", "1_000", "~", "null", "[]", ""]))
values = st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=3), scalars, max_size=2))


@pytest.fixture(autouse=True)
def torch_threads():
    """fit(threads=1) sets torch's global thread count; give the other test files theirs back."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def files_under(root: Path) -> set[Path]:
    return {p for p in Path(root).rglob("*")}


# ---------------------------------------------------------------- config values


@FAST
@given(key=st.one_of(st.sampled_from(sorted(FIELDS)), st.text(max_size=8)), value=values)
def test_convert_returns_the_field_type_or_a_user_error(key, value):
    try:
        out = convert(key, value)
    except UserError as e:
        assert str(e) and "\n" not in str(e)
        return
    kind = TYPES[key]
    if kind in (int, float, str, bool):
        assert isinstance(out, kind)
    else:
        assert isinstance(out, list)
    numbers = out if isinstance(out, list) else [out]
    assert all(v == v and v not in (float("inf"), float("-inf")) for v in numbers if isinstance(v, float))
    if key == "name" and out:
        assert (Path("/runs") / out).resolve().parent == Path("/runs")  # one folder inside out_dir


@FAST
@given(key=st.one_of(st.sampled_from(sorted(FIELDS)), st.text(min_size=1, max_size=8).filter(lambda k: k[0] != "-")),
       value=st.one_of(st.text(max_size=16), scalars.map(str)))
def test_cli_config_errors_are_one_line_exit_2(key, value):
    seen = []
    err = io.StringIO()
    with tempfile.TemporaryDirectory() as out, contextlib.redirect_stderr(err), \
            mock.patch("trainlab.api.train_config", side_effect=lambda cfg: seen.append(cfg)):
        code = main(["train", f"{key}={value}", f"out_dir={out}"])
        assert os.listdir(out) == []  # nothing is written before the config is valid and training starts
    if code == 0:
        assert len(seen) == 1 and err.getvalue() == ""
    else:
        assert code == 2 and err.getvalue().startswith("trainlab: error: ") and err.getvalue().count("\n") == 1


FIT_VALUES = {
    "lr": st.one_of(st.floats(), st.text(max_size=6)), "momentum": st.floats(-1, 2), "weight_decay": st.floats(),
    "nesterov": st.booleans(), "optimizer": st.sampled_from(["sgd", "adam", "adamw", "rmsprop"]),
    "betas": st.lists(st.floats(-1, 2), max_size=3), "label_smoothing": st.floats(-1, 2),
    "scheduler": st.sampled_from(["none", "step", "multistep", "cosine", "onecycle"]),
    "gamma": st.floats(-2, 2), "max_lr": st.floats(-1, 10), "step_size": st.integers(-1, 3),
    "milestones": st.lists(st.integers(-2, 4), max_size=3), "batch_size": st.integers(-1, 300),
    "grad_accum": st.integers(-1, 5), "seed": st.integers(-1, 2**64), "log_every": st.integers(-1, 3),
    "save_every": st.integers(-1, 3), "max_steps": st.integers(-1, 3), "drop_last": st.booleans(),
    "loss": st.sampled_from(["auto", "cross_entropy", "nll", "mse", "bce", "l1"]),
    "name": st.sampled_from(["ok", "../up", "/abs", ".", "a/b", "x" * 300]),
    "ema": st.floats(-1, 2), "tta": st.sampled_from(["none", "flip", "translate", "rotate"]),
}
overrides = st.lists(st.sampled_from(sorted(FIT_VALUES)), min_size=1, max_size=4, unique=True).flatmap(
    lambda keys: st.fixed_dictionaries({k: FIT_VALUES[k] for k in keys}))


@SLOW
@given(options=overrides)
def test_short_runs_with_any_settings_end_cleanly_inside_out_dir(options, blobs, tmp_path):
    (x, y), (xv, yv) = blobs
    with tempfile.TemporaryDirectory(dir=tmp_path) as box:
        out = Path(box) / "runs"
        try:
            r = trainlab.fit(nn.Linear(2, 3), (x[:64], y[:64]), (xv, yv), epochs=2, out_dir=str(out),
                             tensorboard=False, plots=False, threads=1, **options)
            assert r.run_dir.parent == out and (r.run_dir / "checkpoints" / "last.pt").is_file()
            event("trained")
        except UserError as e:
            assert str(e) and "\n" not in str(e)
            event(f"refused: {type(e).__name__}")
        assert files_under(box) <= {out} | files_under(out)  # nothing beside the runs folder
        if out.exists():  # and in it, run folders only
            assert all(p.is_dir() for p in out.iterdir())


# ---------------------------------------------------------------- checkpoint dicts


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory.mktemp("runs"), seed=1, scheduler="multistep", milestones=[1])


junk = st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=4), scalars, max_size=3),
                 st.builds(lambda n, dt: torch.zeros(n, dtype=dt), st.integers(0, 5),
                           st.sampled_from([torch.uint8, torch.int64, torch.float32, torch.bool])),
                 st.just(KeyError))  # KeyError: delete the entry


def mutation_paths(state: dict) -> list[tuple[str, ...]]:
    """Every top-level entry and every key one level down (model, config, rng, loader, progress, ...)."""
    paths = []
    for key, value in state.items():
        paths.append((key,))
        if isinstance(value, dict):
            paths += [(key, sub) for sub in value]
    return paths


def mutate(state: dict, path: tuple[str, ...], value) -> dict:
    state = copy.deepcopy(state)
    target = state
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return state


@given(data=st.data())
@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_validate_accepts_or_names_the_entry(data, saved_run):
    state = torch.load(saved_run / "checkpoints" / "last.pt", weights_only=True)
    path = data.draw(st.sampled_from(mutation_paths(state)))
    bad = mutate(state, path, data.draw(junk))
    for resume in (False, True):
        try:
            checkpoint.validate(bad, "x.pt", resume=resume)
        except UserError as e:
            assert str(e).startswith("x.pt") and "\n" not in str(e)


@SLOW
@given(data=st.data())
def test_resume_from_a_damaged_checkpoint_ends_cleanly(data, saved_run, tmp_path):
    """Mutations of everything resume restores, the model and optimizer state included (their fit
    to the model is checked where the trainer loads them)."""
    state = torch.load(saved_run / "checkpoints" / "last.pt", weights_only=True)
    paths = mutation_paths(state)
    path = data.draw(st.sampled_from(paths))
    bad = mutate(state, path, data.draw(junk))
    with tempfile.TemporaryDirectory(dir=tmp_path) as box:
        run = Path(box) / "run"
        (run / "checkpoints").mkdir(parents=True)
        torch.save(bad, run / "checkpoints" / "last.pt")
        g = torch.Generator().manual_seed(1)
        x, y = torch.randn(64, 2, generator=g), torch.randint(0, 3, (64,), generator=g)
        try:
            trainlab.fit(nn.Linear(2, 3), (x, y), (x, y), epochs=2, batch_size=32, out_dir=box,
                         tensorboard=False, plots=False, scheduler="multistep", milestones=[1],
                         resume=run / "checkpoints" / "last.pt")
            event("resumed")
        except UserError as e:
            assert "\n" not in str(e)
            event("refused")
        assert {p.relative_to(box).parts[0] for p in files_under(box)} == {"run"}


@FAST
@given(blob=st.one_of(st.binary(max_size=200), st.just(b""), st.just(b"PK\x03\x04")))
def test_any_bytes_as_a_checkpoint_are_a_user_error(blob):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "last.pt"
        path.write_bytes(blob)
        with pytest.raises(UserError, match=r"cannot read checkpoint .*last.pt: ") as e:
            checkpoint.load(path)
        assert "weights_only" not in str(e.value) and "\n" not in str(e.value)


# ---------------------------------------------------------------- CSV contents

cells = st.one_of(st.sampled_from(["", "NA", "nan", "inf", "-inf", "1e999", "1e-999", "0", "1", "2.5", "-3",
                                   "yes", "no", "a", "b", "x y", '"q"', "1,5", " ", "\u00e9"]),
                  st.text(max_size=5), st.integers(-10**20, 10**20).map(str), st.floats().map(str))
tables = st.integers(1, 4).flatmap(lambda width: st.lists(st.lists(cells, min_size=width, max_size=width),
                                                          min_size=0, max_size=12))


def write_csv(path: Path, rows: list[list[str]], ragged: bool) -> None:
    import csv

    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        for i, row in enumerate(rows):
            writer.writerow(row[:-1] if ragged and i == 1 and len(row) > 1 else row)


@FAST
@given(rows=tables, ragged=st.booleans(), task=st.sampled_from(["auto", "classification", "regression"]),
       header=st.sampled_from(["auto", "yes", "no"]))
def test_any_csv_is_a_table_or_a_user_error(rows, ragged, task, header):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.csv"
        write_csv(path, rows, ragged)
        try:
            columns, raw = read_table(path, header)
            splits = table_splits(path, task=task, header=header, test_fraction=0.3)
        except UserError:
            return
        assert len(splits.train) + len(splits.test) == len(raw) and len(columns) == len(raw[0])
        assert torch.isfinite(splits.train.x).all() and torch.isfinite(splits.test.x).all()
        if splits.train.y.is_floating_point():
            assert torch.isfinite(splits.train.y).all()
        try:  # the fitted preprocessing applied to the same file again, as predict does
            x, _ = transform(splits.info["table"], columns, raw, with_target=False)
            assert torch.isfinite(x).all()
        except UserError:
            pass


@FAST
@given(blob=st.binary(max_size=120))
def test_any_bytes_as_a_csv_are_a_table_or_a_user_error(blob):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.csv"
        path.write_bytes(blob)
        try:
            read_table(path)
        except UserError:
            pass
