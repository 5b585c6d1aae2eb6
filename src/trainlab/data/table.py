"""CSV tables as feature tensors: read, choose the target and task, fit preprocessing on train only.

The fitted preprocessing is a plain dict (str/int/float/bool/list/dict) so it can ride inside
checkpoints loaded with `weights_only=True`, and eval and predict apply exactly what training did.

Rules, in one place:
- Cells are stripped of surrounding spaces; "", "NA", "NaN", "?" (any case) mean missing. Lines
  whose cells are all empty are skipped (spreadsheets export trailing ",,,," lines).
- header="auto": the first row is a header when one of its cells is text above a column that is
  numeric below it, or when all of its cells are text and none of them recurs in its own column
  below (an all-text table). "yes"/"no" override. Headerless columns are named c0, c1, ...
- A column is numeric when all its present cells are numbers; when most (over half) are numbers but
  some are not, the first odd cell is an error; otherwise it is a category column (one-hot over the
  sorted train values; a value unseen in training encodes as all zeros).
- Missing cells: numeric → the train median, category → the category "missing". A column with no
  present cell at all is an error. Numeric columns are standardised with the train mean and std
  (std 1 for a constant column).
- Task "auto": a text target, or a numeric target of at most 20 distinct integers, is
  classification; any other numeric target is regression (kept raw, not standardised). The target
  column must have no missing cells.

Errors from `table_splits` name the file and its line; the lower-level functions, which only see
rows, name the data row (1-based, header excluded).
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import UserError
from . import Splits, TensorData, stratified_split
from .idx import read_bytes

MISSING_MARKERS = frozenset({"", "na", "nan", "?"})
MISSING_CATEGORY = "missing"
MAX_CLASS_VALUES = 20  # integer targets with more distinct values are treated as quantities
HEADER_SAMPLE = 1000  # rows looked at to detect a header; enough to decide, cheap on big files

Where = Callable[[int], str]


def is_missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING_MARKERS


def to_number(cell: str) -> float | None:
    """The cell as a finite float, or None; inf is refused because it breaks mean and std."""
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _is_text(cell: str) -> bool:
    return not is_missing(cell) and to_number(cell) is None


def _listing(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown}, ... ({len(names)} in all)"


def _locator(lines: list[int] | None) -> Where:
    """How errors point at row i: the file line when known, else the 1-based data row."""
    if lines is None:
        return lambda i: f"data row {i + 1}"
    return lambda i: f"line {lines[i]}"


def read_table(path: Path, header: str = "auto") -> tuple[list[str], list[list[str]]]:
    """Column names and rows of raw strings."""
    columns, rows, _ = _read(Path(path), header)
    return columns, rows


def _records(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, stripped cells) of every non-blank CSV record."""
    try:
        text = read_bytes(path).decode("utf-8-sig")  # -sig: drop the BOM spreadsheets write
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (bad byte at offset {e.start})") from None
    reader = csv.reader(io.StringIO(text))
    records = []
    try:
        for cells in reader:
            cells = [c.strip() for c in cells]
            if any(cells):
                records.append((reader.line_num, cells))
    except csv.Error as e:
        raise UserError(f"{path}: line {reader.line_num}: {e}") from None
    return records


def _looks_like_header(first: list[str], rest: list[list[str]]) -> bool:
    rest = rest[:HEADER_SAMPLE]
    for j, cell in enumerate(first):
        below = [r[j] for r in rest if j < len(r) and not is_missing(r[j])]
        if _is_text(cell) and below and all(to_number(v) is not None for v in below):
            return True
    if all(_is_text(c) for c in first):
        return not any(j < len(r) and r[j] == c for r in rest for j, c in enumerate(first))
    return False


def _header_names(path: Path, cells: list[str]) -> list[str]:
    names = [c or f"c{j}" for j, c in enumerate(cells)]  # an unnamed index column still gets a name
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise UserError(f"{path}: column name '{name}' appears more than once in the header")
        seen.add(name)
    return names


def _read(path: Path, header: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Columns, rows and each row's file line number."""
    if header not in ("auto", "yes", "no"):
        raise UserError(f"header must be 'auto', 'yes' or 'no', got '{header}'")
    records = _records(path)
    if not records:
        raise UserError(f"{path}: the file holds no rows")
    first = records[0][1]
    rest = [cells for _, cells in records[1:]]
    if header == "yes" or (header == "auto" and _looks_like_header(first, rest)):
        columns, records, origin = _header_names(path, first), records[1:], "the header"
    else:
        columns, origin = [f"c{j}" for j in range(len(first))], "the first row"
    for line, cells in records:
        if len(cells) != len(columns):
            raise UserError(f"{path}: line {line} has {len(cells)} cells but {origin} has {len(columns)}")
    if not records:
        raise UserError(f"{path}: no data rows after the header")
    return columns, [cells for _, cells in records], [line for line, _ in records]


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


def _column_kinds(columns: list[str], rows: list[list[str]], target: int, where: Where) -> dict[str, str]:
    """Each feature column's kind, "numeric" or "category"; refuses empty and mostly-numeric ones."""
    kinds = {}
    for j, name in enumerate(columns):
        if j == target:
            continue
        present = [(i, r[j]) for i, r in enumerate(rows) if not is_missing(r[j])]
        if not present:
            raise UserError(f"column '{name}' is empty: every cell is missing")
        odd = [(i, c) for i, c in present if to_number(c) is None]
        if odd and 2 * len(odd) < len(present):
            i, cell = odd[0]
            raise UserError(f"column '{name}', {where(i)}: {cell!r} is not a number "
                            f"(the column is numeric in {len(present) - len(odd)} of {len(present)} filled rows)")
        kinds[name] = "category" if odd else "numeric"
    return kinds


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
                raise UserError(f"target column '{name}', {where(i)}: {cells[i]!r} is not a number, "
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


def _fit_numeric(name: str, cells: list[str]) -> dict:
    values = np.array([to_number(c) for c in cells if not is_missing(c)], dtype=np.float64)
    if not len(values):
        raise UserError(f"column '{name}' has no values in the training rows")
    scale = 1.0  # sums overflow near 1e308: then the same statistics on values scaled to [-1, 1]
    with np.errstate(over="ignore"):
        for _ in range(2):
            mean, std, median = (float(f(values / scale)) * scale for f in (np.mean, np.std, np.median))
            if math.isfinite(mean) and math.isfinite(std) and math.isfinite(median):
                break
            scale = float(np.abs(values).max())
    # std of equal floats can come out as 1e-17, not 0; of tiny ones (1e-300) as 0: squares underflow
    constant = values.min() == values.max() or not std > 0
    return {"name": name, "kind": "numeric", "mean": mean, "std": 1.0 if constant else std, "median": median}


def _fit_category(name: str, cells: list[str]) -> dict:
    categories = sorted({MISSING_CATEGORY if is_missing(c) else c.strip() for c in cells})
    return {"name": name, "kind": "category", "categories": categories}


def fit_preprocessing(columns: list[str], rows: list[list[str]], target: str = "", task: str = "auto") -> dict:
    """Fit on train rows; returns the plain-dict spec (see the module docstring for the rules):
    {"target", "task", "classes", "features", "columns", "feature_names", "summary"}."""
    name = _resolve_target(columns, target)
    where = _locator(None)
    _check_widths(columns, rows, where)
    kinds = _column_kinds(columns, rows, columns.index(name), where)
    return _fit(columns, rows, name, task, kinds, where)


def _fit(columns: list[str], rows: list[list[str]], target: str, task: str,
         kinds: dict[str, str], where: Where) -> dict:
    t = columns.index(target)
    cells = _target_cells(target, [r[t] for r in rows], where)
    task = _choose_task(target, cells, task, where)
    classes = _sorted_classes(cells) if task == "classification" else []
    if task == "classification" and len(classes) < 2:
        raise UserError(f"target column '{target}' has a single class {classes} in the training rows")
    features, feature_names = [], []
    for j, name in enumerate(columns):
        if j == t:
            continue
        column = [r[j] for r in rows]
        if kinds[name] == "numeric":
            features.append(_fit_numeric(name, column))
            feature_names.append(name)
        else:
            features.append(_fit_category(name, column))
            feature_names += [f"{name}={c}" for c in features[-1]["categories"]]
    spec = {"target": target, "task": task, "classes": classes, "features": features,
            "columns": list(columns), "feature_names": feature_names}
    spec["summary"] = _summary(spec, f"{len(rows)} rows")
    return spec


def _summary(spec: dict, rows: str) -> str:
    numeric = sum(f["kind"] == "numeric" for f in spec["features"])
    categorical = len(spec["features"]) - numeric
    task = f"classification, {len(spec['classes'])} classes" if spec["task"] == "classification" else "regression"
    return (f"{rows}, {numeric} numeric + {categorical} categorical features, "
            f"target '{spec['target']}' ({task})")


def _check_widths(columns: list[str], rows: list[list[str]], where: Where) -> None:
    for i, row in enumerate(rows):
        if len(row) != len(columns):
            raise UserError(f"{where(i)} has {len(row)} cells but there are {len(columns)} columns")


def _column_index(columns: list[str], name: str, what: str) -> int:
    if name not in columns:
        raise UserError(f"missing {what} column '{name}'; the table has: {_listing(columns)}")
    return columns.index(name)


def _encode_numeric(feature: dict, cells: list[str], where: Where) -> np.ndarray:
    out = np.empty((len(cells), 1), dtype=np.float64)
    for i, cell in enumerate(cells):
        value = feature["median"] if is_missing(cell) else to_number(cell)
        if value is None:
            raise UserError(f"column '{feature['name']}', {where(i)}: {cell!r} is not a number")
        out[i, 0] = value
    mean, std = feature["mean"], feature["std"]
    with np.errstate(over="ignore"):  # x - mean overflows for values spanning more than ~1.8e308
        z = (out - mean) / std
        z = np.where(np.isfinite(z), z, out / std - mean / std).astype(np.float32)
    bad = np.flatnonzero(~np.isfinite(z))  # still too large for float32: a value far outside training's
    if len(bad):
        i = int(bad[0])
        raise UserError(f"column '{feature['name']}', {where(i)}: {cells[i]!r} is too far from the training "
                        f"values (mean {mean:.3g}, std {std:.3g}) to use")
    return z


def _encode_category(feature: dict, cells: list[str]) -> np.ndarray:
    lookup = {c: k for k, c in enumerate(feature["categories"])}
    out = np.zeros((len(cells), len(lookup)), dtype=np.float64)
    for i, cell in enumerate(cells):
        k = lookup.get(MISSING_CATEGORY if is_missing(cell) else cell.strip())
        if k is not None:  # a value unseen in training stays all zeros
            out[i, k] = 1.0
    return out


def _encode_target(spec: dict, cells: list[str], where: Where) -> torch.Tensor:
    name = spec["target"]
    _target_cells(name, cells, where)
    if spec["task"] == "regression":
        values = [to_number(c) for c in cells]
        for i, value in enumerate(values):
            if value is None:
                raise UserError(f"target column '{name}', {where(i)}: {cells[i]!r} is not a number")
            if abs(value) > np.finfo(np.float32).max:  # targets become a float32 tensor
                raise UserError(f"target column '{name}', {where(i)}: {cells[i]!r} is too large (float32 targets)")
        return torch.tensor(values, dtype=torch.float32)
    lookup = {c: k for k, c in enumerate(spec["classes"])}
    labels = []
    for i, cell in enumerate(cells):
        k = lookup.get(_class_name(cell))
        if k is None:
            raise UserError(f"target column '{name}', {where(i)}: class {cell!r} was not in the training rows "
                            f"(classes: {_listing(spec['classes'])})")
        labels.append(k)
    return torch.tensor(labels, dtype=torch.int64)


def transform(spec: dict, columns: list[str], rows: list[list[str]],
              with_target: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(x float32 (N, F), y) using only the spec; columns are matched by name, so rows may come in
    another column order and, with with_target=False, without the target column."""
    return _transform(spec, columns, rows, with_target, _locator(None))


def _transform(spec: dict, columns: list[str], rows: list[list[str]], with_target: bool,
               where: Where) -> tuple[torch.Tensor, torch.Tensor | None]:
    _check_widths(columns, rows, where)
    blocks = []
    for feature in spec["features"]:
        cells = [r[_column_index(columns, feature["name"], "feature")] for r in rows]
        if feature["kind"] == "numeric":
            blocks.append(_encode_numeric(feature, cells, where))
        else:
            blocks.append(_encode_category(feature, cells))
    x = torch.from_numpy(np.concatenate(blocks, axis=1).astype(np.float32))
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


def table_splits(path: Path, *, target: str = "", val_fraction: float = 0.2, seed: int = 0,
                 task: str = "auto", header: str = "auto", spec: dict | None = None) -> Splits:
    """Read, split (stratified for classification, seeded random for regression), fit on the train
    rows only and transform both splits. The spec is in info["table"], with a one-line summary.
    A given `spec` (a trained run's) is used as it is: evaluation sees the training preprocessing."""
    path = Path(path)
    columns, rows, lines = _read(path, header)
    where = _locator(lines)
    try:
        name = _resolve_target(columns, target)
        t = columns.index(name)
        # Task and column kinds are decided on the whole file so a split cannot flip them;
        # every statistic (classes, mean, std, median, categories) comes from the train rows only.
        task = _choose_task(name, _target_cells(name, [r[t] for r in rows], where), task, where)
        kinds = _column_kinds(columns, rows, t, where)
        train, held = stratified_split(_provisional_labels(name, [r[t] for r in rows], task), val_fraction, seed)
        if not len(train) or not len(held):
            raise UserError(f"{len(rows)} rows are too few to split with val_fraction={val_fraction}")
        parts = [([rows[i] for i in idx], _locator([lines[i] for i in idx])) for idx in (train, held)]
        spec = _fit(columns, parts[0][0], name, task, kinds, parts[0][1]) if spec is None else dict(spec)
        (x_tr, y_tr), (x_te, y_te) = (_transform(spec, columns, r, True, w) for r, w in parts)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    spec["summary"] = _summary(spec, f"{path.name}: {len(rows)} rows")
    return Splits(TensorData(x_tr, y_tr), TensorData(x_te, y_te), list(spec["classes"]), str(path),
                  {"table": spec})
