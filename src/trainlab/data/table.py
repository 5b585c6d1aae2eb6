"""CSV tables as feature tensors: read, infer the columns, choose target and task, fit on train only.

The fitted preprocessing ("spec") is a plain dict (str/int/float/bool/list/dict) so it can ride
inside checkpoints loaded with `weights_only=True`, and eval and predict apply exactly what
training did. Reading is in csvfile.py, column inference in schema.py, per-column fitting and
encoding in features.py. Here:
- Task "auto": a text target, or a numeric target of at most 20 distinct integers, is
  classification; any other numeric target is regression. The target column must have no
  missing cells.
- Regression targets are standardised with the train mean and std, kept in spec["target_scale"]
  as [mean, std]; metrics and predictions are un-scaled with it (metrics.py, predict.py).
- spec: {"target", "task", "classes", "features", "columns", "feature_names", "schema",
  "target_scale" (regression), "encoding", "delimiter", "decimal", "summary"}.

Errors from `table_splits` name the file and its line; the lower-level functions, which only see
rows, name the data row (1-based, header excluded).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from . import Splits, TensorData, stratified_split
from .csvfile import CsvFile, is_missing, read_csv, to_number
from .features import encode_feature, feature_names, fit_feature, safe_stats
from .schema import Where, format_schema, infer_schema

__all__ = ["read_table", "fit_preprocessing", "transform", "encode_rows", "table_splits", "is_missing", "to_number"]
MAX_CLASS_VALUES = 20  # integer targets with more distinct values are treated as quantities


def _listing(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... ({len(names)} in all)"


def _locator(lines: list[int] | None) -> Where:
    """How errors point at row i: the file line when known, else the 1-based data row."""
    if lines is None:
        return lambda i: f"data row {i + 1}"
    return lambda i: f"line {lines[i]}"


def read_table(path: Path, header: str = "auto") -> tuple[list[str], list[list[str]]]:
    """Column names and rows of raw (stripped) strings."""
    table = read_csv(Path(path), header)
    return table.columns, table.rows


def _resolve_target(columns: list[str], target: str) -> str:
    """The target's column name: a name, a column index ("8"), or the last column by default."""
    if not target:
        name = columns[-1]
    elif target in columns:
        name = target
    elif target.isdigit() and int(target) < len(columns):
        name = columns[int(target)]
    else:
        raise UserError(f"no target column '{target}'; the columns are: {_listing(columns)}")
    if len(columns) < 2:
        raise UserError(f"the table has only the target column '{name}', no feature columns")
    return name


def _target_cells(name: str, cells: list[str], where: Where) -> list[str]:
    for i, cell in enumerate(cells):
        if is_missing(cell):
            raise UserError(f"target column '{name}' has a missing value at {where(i)}; fill or drop those rows")
    return cells


def _choose_task(name: str, cells: list[str], task: str, where: Where) -> str:
    if task not in ("auto", "classification", "regression"):
        raise UserError(f"task must be 'auto', 'classification' or 'regression', got '{task}'")
    numbers = [to_number(c) for c in cells]
    if task == "regression":
        for i, value in enumerate(numbers):
            if value is None:
                raise UserError(f"target column '{name}', {where(i)}: '{cells[i]}' is not a number, "
                                "so the task cannot be regression")
    if task != "auto":
        return task
    if any(v is None for v in numbers):
        return "classification"
    few_integers = all(v.is_integer() for v in numbers) and len(set(numbers)) <= MAX_CLASS_VALUES
    return "classification" if few_integers else "regression"


def _class_name(cell: str) -> str:
    """One spelling per class: numeric labels "1", "1.0" and "01" are the same class "1"."""
    value = to_number(cell)
    if value is None:
        return cell.strip()
    return str(int(value)) if value.is_integer() else repr(value)


def _sorted_classes(cells: list[str]) -> list[str]:
    """Distinct class names, numeric ones in numeric order first, then text ones alphabetically."""
    names = {_class_name(c) for c in cells}
    return sorted(names, key=lambda n: (0, to_number(n), "") if to_number(n) is not None else (1, 0.0, n))


def _overrides(drop=(), categorical=(), numeric=()) -> dict[str, list[str]]:
    return {"drop": list(drop), "categorical": list(categorical), "numeric": list(numeric)}


def fit_preprocessing(columns: list[str], rows: list[list[str]], target: str = "", task: str = "auto",
                      drop=(), categorical=(), numeric=()) -> dict:
    """Fit on train rows; returns the plain-dict spec (see the module docstring)."""
    name = _resolve_target(columns, target)
    where = _locator(None)
    _check_widths(columns, rows, where)
    schema = infer_schema(columns, rows, name, _overrides(drop, categorical, numeric), where)
    return _fit(columns, rows, name, task, schema, where)


def _target_entry(spec: dict) -> dict:
    if spec["task"] == "classification":
        return {"column": spec["target"], "kind": "target", "detail": f"classification, {len(spec['classes'])} classes"}
    mean, std = spec["target_scale"]
    return {"column": spec["target"], "kind": "target", "detail": f"regression, standardised (mean {mean:.4g}, "
                                                                  f"std {std:.4g})"}


def _fit(columns: list[str], rows: list[list[str]], target: str, task: str, schema: list[dict],
         where: Where) -> dict:
    t = columns.index(target)
    cells = _target_cells(target, [r[t] for r in rows], where)
    task = _choose_task(target, cells, task, where)
    classes = _sorted_classes(cells) if task == "classification" else []
    if task == "classification" and len(classes) < 2:
        raise UserError(f"target column '{target}' has a single class {classes} in the training rows")
    features = [fit_feature(e, [r[columns.index(e["column"])] for r in rows], where)
                for e in schema if e["kind"] != "dropped"]
    if not features:
        raise UserError("no feature columns are left: " + "; ".join(f"'{e['column']}' {e['detail']}" for e in schema)
                        + " (keep one with categorical=[...] or numeric=[...])")
    spec = {"target": target, "task": task, "classes": classes, "features": features, "columns": list(columns),
            "feature_names": [n for f in features for n in feature_names(f)]}
    if task == "regression":
        mean, std, _ = safe_stats(target, np.array([to_number(c) for c in cells], dtype=np.float64))
        spec["target_scale"] = [mean, std]
    spec["schema"] = schema + [_target_entry(spec)]
    spec["summary"] = _summary(spec, f"{len(rows)} rows")
    return spec


def _summary(spec: dict, rows: str) -> str:
    """One line of counts, then the schema table."""
    counts: dict[str, int] = {}
    for entry in spec.get("schema", ()):
        counts[entry["kind"]] = counts.get(entry["kind"], 0) + 1
    if "schema" not in spec:  # a spec from before schemas were recorded
        for f in spec["features"]:
            counts[f["kind"]] = counts.get(f["kind"], 0) + 1
    kinds = [f"{counts.get('numeric', 0)} numeric", f"{counts.get('category', 0)} categorical"]
    kinds += [f"{counts[k]} {k}" for k in ("boolean", "date") if counts.get(k)]
    dropped = f", {counts['dropped']} left out" if counts.get("dropped") else ""
    task = f"classification, {len(spec['classes'])} classes" if spec["task"] == "classification" else "regression"
    line = f"{rows}, {' + '.join(kinds)} features{dropped}, target '{spec['target']}' ({task})"
    return line + ("\n" + format_schema(spec["schema"]) if "schema" in spec else "")


def _check_widths(columns: list[str], rows: list[list[str]], where: Where) -> None:
    for i, row in enumerate(rows):
        if len(row) != len(columns):
            raise UserError(f"{where(i)} has {len(row)} cells but there are {len(columns)} columns")


def _column_index(columns: list[str], name: str, what: str) -> int:
    if name not in columns:
        raise UserError(f"missing {what} column '{name}'; the table has: {_listing(columns)}")
    return columns.index(name)


def _encode_target(spec: dict, cells: list[str], where: Where) -> torch.Tensor:
    name = spec["target"]
    _target_cells(name, cells, where)
    if spec["task"] == "regression":
        values = [to_number(c) for c in cells]
        for i, value in enumerate(values):
            if value is None:
                raise UserError(f"target column '{name}', {where(i)}: '{cells[i]}' is not a number")
        mean, std = spec.get("target_scale") or (0.0, 1.0)  # specs from before target scaling: raw
        return torch.from_numpy(((np.array(values) - mean) / std).astype(np.float32))
    lookup = {c: k for k, c in enumerate(spec["classes"])}
    labels = []
    for i, cell in enumerate(cells):
        k = lookup.get(_class_name(cell))
        if k is None:
            raise UserError(f"target column '{name}', {where(i)}: class '{cell}' was not in the training rows "
                            f"(classes: {_listing(spec['classes'])})")
        labels.append(k)
    return torch.tensor(labels, dtype=torch.int64)


def encode_rows(spec: dict, columns: list[str], rows: list[list[str]],
                where: Where | None = None) -> tuple[torch.Tensor, dict[int, str]]:
    """(x float32 (N, F), {row index: why it cannot be used}) for rows whose features do not fit
    in float32 after standardisation (e.g. 1e308 in a column whose train values were near 1)."""
    where = where or _locator(None)
    _check_widths(columns, rows, where)
    blocks = [encode_feature(f, [r[_column_index(columns, f["name"], "feature")] for r in rows], where)
              for f in spec["features"]]
    with np.errstate(over="ignore"):
        x = np.concatenate(blocks, axis=1).astype(np.float32)
    names = spec["feature_names"]
    problems = {int(i): f"column '{names[j].split('=')[0]}' is out of range after standardisation "
                        f"(train mean/std cannot represent it in float32)"
                for i, j in reversed(np.argwhere(~np.isfinite(x)).tolist())}
    return torch.from_numpy(x), problems


def transform(spec: dict, columns: list[str], rows: list[list[str]],
              with_target: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(x float32 (N, F), y) using only the spec; columns are matched by name, so rows may come in
    another column order and, with with_target=False, without the target column."""
    return _transform(spec, columns, rows, with_target, _locator(None))


def _transform(spec: dict, columns: list[str], rows: list[list[str]], with_target: bool,
               where: Where) -> tuple[torch.Tensor, torch.Tensor | None]:
    x, problems = encode_rows(spec, columns, rows, where)
    if problems:
        i = min(problems)
        raise UserError(f"{where(i)}: {problems[i]}")
    y = None
    if with_target:
        t = _column_index(columns, spec["target"], "target")
        y = _encode_target(spec, [r[t] for r in rows], where)
    return x, y


def _provisional_labels(name: str, cells: list[str], task: str) -> torch.Tensor:
    """Labels to stratify the split on, before anything is fitted; float zeros give a plain random split."""
    if task == "regression":
        return torch.zeros(len(cells), dtype=torch.float32)
    lookup = {c: k for k, c in enumerate(_sorted_classes(cells))}
    return torch.tensor([lookup[_class_name(c)] for c in cells], dtype=torch.int64)


def _source_note(table: CsvFile) -> str:
    notes = [table.encoding] if table.encoding != "utf-8" else []
    notes += [f"delimiter {table.delimiter!r}"] if table.delimiter != "," else []
    notes += ["decimal comma"] if table.decimal == "," else []
    return f" ({', '.join(notes)})" if notes else ""


def table_splits(path: Path, *, target: str = "", test_fraction: float = 0.2, seed: int = 0, task: str = "auto",
                 header: str = "auto", spec: dict | None = None, drop=(), categorical=(), numeric=()) -> Splits:
    """Read, split (stratified for classification, seeded random for regression), fit on the train
    rows only and transform both splits. The spec is in info["table"], with a summary and schema.
    A given `spec` (a trained run's) is used as it is: evaluation sees the training preprocessing."""
    path = Path(path)
    table = read_csv(path, header)
    columns, rows, where = table.columns, table.rows, _locator(table.lines)
    try:
        name = _resolve_target(columns, target)
        t = columns.index(name)
        # Task and column kinds are decided on the whole file so a split cannot flip them;
        # every statistic (classes, mean, std, median, categories) comes from the train rows only.
        task = _choose_task(name, _target_cells(name, [r[t] for r in rows], where), task, where)
        train, held = stratified_split(_provisional_labels(name, [r[t] for r in rows], task), test_fraction, seed)
        if not len(train) or not len(held):
            raise UserError(f"{len(rows)} rows are too few to split with test_fraction={test_fraction}")
        parts = [([rows[i] for i in idx], _locator([table.lines[i] for i in idx])) for idx in (train, held)]
        if spec is None:
            schema = infer_schema(columns, rows, name, _overrides(drop, categorical, numeric), where)
            spec = _fit(columns, parts[0][0], name, task, schema, parts[0][1])
            spec.update(encoding=table.encoding, delimiter=table.delimiter, decimal=table.decimal)
        spec = dict(spec)
        (x_tr, y_tr), (x_te, y_te) = (_transform(spec, columns, r, True, w) for r, w in parts)
    except UserError as e:
        raise UserError(f"{path}: {e}") from e
    spec["summary"] = _summary(spec, f"{path.name}{_source_note(table)}: {len(rows)} rows")
    return Splits(TensorData(x_tr, y_tr), TensorData(x_te, y_te), list(spec["classes"]), str(path),
                  {"table": spec})
