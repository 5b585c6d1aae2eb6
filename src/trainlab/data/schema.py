"""Column inference for tables: which kind each column is, and the preprocessing fitted per kind.

Kinds are decided on the whole file (so a split cannot flip them), statistics on the train rows
only. The rules, in order (a data scientist's defaults; `drop=`, `categorical=`, `numeric=` override):
- a column listed in drop=[...] is left out; one with no present cell is left out as empty;
- numeric=[...] forces numbers (a cell that is not one is an error naming it); categorical=[...]
  forces one-hot categories;
- every present cell a number: numeric, unless the column is named like an identifier
  (id, index, key, row, ...Id, ..._id) and holds a distinct integer per row: left out;
- only true/false words (true/false, yes/no, y/n, t/f): boolean, one 0/1 feature;
- at least 95 % numbers and at most 3 distinct other values ("unknown", "-"): numeric, those
  values read as missing;
- every present cell a date in one format (guessed by pandas): expanded into year, month, day,
  weekday (and hour when the format has one), each a numeric feature;
- other text (also mixed text and numbers like tickets "A/5 21171", "113803"): one-hot categories,
  unless a distinct value per row (an identifier or free text) or very high cardinality (over 1000
  values, or over 20 values and more than half as many values as rows): left out.
Numeric features are standardised with an overflow-safe mean and std (values are divided by the
largest magnitude first, so 1e308 and 1e-300 columns work); missing cells get the train median.
"""
from __future__ import annotations

import re
import warnings
from typing import Callable

from ..errors import UserError
from .csvfile import is_missing, to_number

Where = Callable[[int], str]
MISSING_CATEGORY = "missing"
MAX_CATEGORIES = 1000  # more one-hot columns than this is never a good default
MANY_CATEGORIES = 20  # above this, a column with over half as many values as rows is left out
NUMERIC_SHARE = 0.95  # a column this numeric, with few other values, is numeric with those as missing
MAX_ODD_VALUES = 3
TRUE_WORDS, FALSE_WORDS = ("true", "yes", "y", "t"), ("false", "no", "n", "f")
ID_NAME = re.compile(r"^(id|index|idx|key|row|rowid|row_id|uuid|unnamed: ?\d+)$|[_ .-]id$", re.I)
CAMEL_ID = re.compile(r"[a-z0-9](Id|ID)$")  # PassengerId, customerID (not "paid", "valid")
DATE_PARTS = ("year", "month", "day", "weekday")


def _ids(name: str, numbers: list[float]) -> bool:
    """Distinct integers under an id-like name: a row key, not a quantity."""
    named = bool(ID_NAME.search(name) or CAMEL_ID.search(name))
    return named and all(v.is_integer() for v in numbers) and len(set(numbers)) == len(numbers) > 1


def _boolean(values: set[str]) -> bool:
    lower = {v.lower() for v in values}
    return any(lower <= {t, f} for t, f in zip(TRUE_WORDS, FALSE_WORDS)) and len(lower) <= 2


def _date_format(present: list[str]) -> str | None:
    """A strftime format every present cell parses with (month-first or day-first), else None."""
    import pandas as pd
    from pandas.tseries.api import guess_datetime_format

    if not any(ch.isdigit() for ch in present[0]):
        return None
    for dayfirst in (False, True):
        with warnings.catch_warnings():  # pandas warns when a guess contradicts `dayfirst`: both are tried
            warnings.simplefilter("ignore", UserWarning)
            fmt = guess_datetime_format(present[0], dayfirst=dayfirst)
        if fmt and not pd.to_datetime(pd.Series(present), format=fmt, errors="coerce").isna().any():
            return fmt
    return None


def _text_kind(present: list[str], numbers: int) -> dict:
    distinct = len(set(present))
    mixed = " (mixed text and numbers)" if numbers else ""
    if distinct == len(present) and len(present) >= 10:
        return {"kind": "dropped", "detail": f"a distinct value in each of its {len(present)} rows "
                                             "(an identifier or free text)"}
    if distinct > MAX_CATEGORIES or (distinct > MANY_CATEGORIES and 2 * distinct > len(present)):
        return {"kind": "dropped", "detail": f"very high cardinality: {distinct} values in {len(present)} rows{mixed}"}
    return {"kind": "category", "detail": f"{distinct} values{mixed}"}


def infer_column(name: str, cells: list[str]) -> dict:
    """{"kind", "detail", ...} for one column by the rules of the module docstring."""
    present = [c for c in cells if not is_missing(c)]
    if not present:
        return {"kind": "dropped", "detail": "empty: every cell is missing"}
    numbers = [v for v in map(to_number, present) if v is not None]
    odd = sorted({c for c in present if to_number(c) is None})
    if not odd:
        if _ids(name, numbers):
            return {"kind": "dropped", "detail": "identifier: a distinct integer per row, named like an id"}
        return {"kind": "numeric", "detail": "numbers"}
    if not numbers and _boolean(set(present)):
        return {"kind": "boolean", "detail": "true/false: " + "/".join(sorted({c.lower() for c in present}))}
    if len(numbers) >= NUMERIC_SHARE * len(present) and len(odd) <= MAX_ODD_VALUES:
        return {"kind": "numeric", "missing": odd,
                "detail": "numbers; " + ", ".join(f"'{v}'" for v in odd) + " read as missing"}
    fmt = None if numbers else _date_format(present)
    if fmt:
        return {"kind": "date", "format": fmt, "detail": f"date {fmt} -> year, month, day, weekday"}
    return _text_kind(present, len(numbers))


def forced_numeric(name: str, cells: list[str], where: Where) -> dict:
    """numeric=[name]: every present cell must be a number."""
    numbers = 0
    for i, cell in enumerate(cells):
        if not is_missing(cell):
            if to_number(cell) is None:
                filled = sum(not is_missing(c) for c in cells)
                numbers = sum(to_number(c) is not None for c in cells)
                raise UserError(f"column '{name}', {where(i)}: '{cell}' is not a number (numeric=[...] lists it; "
                                f"the column is numeric in {numbers} of {filled} filled rows)")
            numbers += 1
    if not numbers:
        raise UserError(f"column '{name}' is empty: every cell is missing")
    return {"kind": "numeric", "detail": "numbers (numeric=[...])"}


def check_overrides(columns: list[str], target: str, overrides: dict[str, list[str]]) -> None:
    seen: dict[str, str] = {}
    for key, names in overrides.items():
        for name in names:
            if name not in columns:
                raise UserError(f"{key}=[...] names column '{name}', which the table does not have; "
                                f"the columns are: {', '.join(columns[:20])}")
            if name == target:
                raise UserError(f"{key}=[...] names the target column '{name}'")
            if name in seen:
                raise UserError(f"column '{name}' is in both {seen[name]}=[...] and {key}=[...]")
            seen[name] = key


def infer_schema(columns: list[str], rows: list[list[str]], target: str, overrides: dict[str, list[str]],
                 where: Where) -> list[dict]:
    """[{"column", "kind", "detail", ...}] for every feature column, in file order."""
    check_overrides(columns, target, overrides)
    schema = []
    for j, name in enumerate(columns):
        if name == target:
            continue
        cells = [r[j] for r in rows]
        if name in overrides.get("drop", ()):
            entry = {"kind": "dropped", "detail": "drop=[...]"}
        elif name in overrides.get("numeric", ()):
            entry = forced_numeric(name, cells, where)
        elif name in overrides.get("categorical", ()):
            entry = {"kind": "category", "detail": f"{len({c for c in cells if not is_missing(c)})} values "
                                                   "(categorical=[...])"}
        else:
            entry = infer_column(name, cells)
        schema.append({"column": name, **entry})
    return schema


def format_schema(schema: list[dict]) -> str:
    """The schema as a small aligned table: column, kind, detail."""
    width = max([len("column")] + [len(e["column"]) for e in schema])
    lines = [f"  {'column':<{width}}  {'kind':<8}  detail"]
    lines += [f"  {e['column']:<{width}}  {e['kind']:<8}  {e['detail']}" for e in schema]
    return "\n".join(lines)
