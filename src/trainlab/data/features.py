"""Per-column preprocessing of a table: fit on the train rows, encode any rows with the fitted dict.

A fitted feature is a plain dict (weights_only-safe), keyed by "kind":
- numeric: {"name", "kind", "mean", "std", "median"[, "missing": [cells read as missing]]} -> 1 column
- category: {"name", "kind", "categories"} -> one-hot, a value unseen in training is all zeros
- boolean: {"name", "kind", "true", "false", "fill"} -> one 0/1 column, missing -> the train share
- date: {"name", "kind", "format", "parts": [{"part", "mean", "std", "median"}]} -> one column a part
Encoding returns float64 (N, k); the caller casts to float32 and reports cells that do not fit.
"""
from __future__ import annotations

import numpy as np

from ..errors import UserError
from .csvfile import is_missing, to_number
from .schema import MISSING_CATEGORY, Where


def safe_stats(name: str, values: np.ndarray) -> tuple[float, float, float]:
    """(mean, std, median) without overflow or underflow: plain float64 for ordinary magnitudes;
    beyond 1e±150 (where sums and squares over- or underflow: a 1e308 column's sum is inf, a
    1e-300 column's squares are 0) computed on values divided by the largest magnitude, scaled back."""
    scale = float(np.max(np.abs(values)))
    if scale == 0.0:
        return 0.0, 1.0, 0.0
    unit, factor = (values, 1.0) if 1e-150 < scale < 1e150 else (values / scale, scale)
    mean, median = float(unit.mean()) * factor, float(np.median(unit)) * factor
    if values.min() == values.max():  # std of equal floats can come out as 1e-17, not 0
        return mean, 1.0, median
    std = float(unit.std()) * factor
    if not np.isfinite(std) or std == 0.0:
        raise UserError(f"column '{name}': its values ({values.min():.3g} to {values.max():.3g}) are too close "
                        "together to standardise in float64; rescale the column or leave it out with drop=[...]")
    return mean, std, median


def standardise(values: np.ndarray, mean: float, std: float) -> np.ndarray:
    """(v - mean) / std, falling back to v/std - mean/std where v - mean overflows."""
    with np.errstate(over="ignore", invalid="ignore"):
        z = (values - mean) / std
        bad = ~np.isfinite(z)
        z[bad] = values[bad] / std - mean / std
    return z


def _numbers(feature: dict, cells: list[str], where: Where) -> np.ndarray:
    """Cells as floats, NaN where missing; a cell that is not a number is an error naming it."""
    odd = set(feature.get("missing", ()))
    out = np.full(len(cells), np.nan)
    for i, cell in enumerate(cells):
        if is_missing(cell) or cell in odd:
            continue
        value = to_number(cell)
        if value is None:
            raise UserError(f"column '{feature['name']}', {where(i)}: '{cell}' is not a number")
        out[i] = value
    return out


def _dates(feature: dict, cells: list[str], where: Where) -> np.ndarray:
    """(N, parts) floats, NaN where missing; a present cell that is not a date is an error naming it."""
    import pandas as pd

    present = [None if is_missing(c) else c for c in cells]
    stamps = pd.to_datetime(pd.Series(present, dtype=object), format=feature["format"], errors="coerce")
    for i, (cell, stamp) in enumerate(zip(present, stamps)):
        if cell is not None and pd.isna(stamp):
            raise UserError(f"column '{feature['name']}', {where(i)}: '{cell}' is not a date like {feature['format']}")
    parts = {"year": stamps.dt.year, "month": stamps.dt.month, "day": stamps.dt.day,
             "weekday": stamps.dt.day_of_week, "hour": stamps.dt.hour}
    return np.stack([parts[p].to_numpy(dtype=np.float64, na_value=np.nan) for p in feature["parts"]], axis=1)


def _fit_numbers(name: str, values: np.ndarray) -> dict:
    values = values[~np.isnan(values)]
    if not len(values):
        raise UserError(f"column '{name}' has no values in the training rows")
    mean, std, median = safe_stats(name, values)
    return {"mean": mean, "std": std, "median": median}


def fit_feature(entry: dict, cells: list[str], where: Where) -> dict:
    """The fitted dict for one schema entry (not "dropped") from its train cells."""
    name, kind = entry["column"], entry["kind"]
    if kind == "numeric":
        feature = {"name": name, "kind": kind, **({"missing": entry["missing"]} if entry.get("missing") else {})}
        return {**feature, **_fit_numbers(name, _numbers(feature, cells, where))}
    if kind == "category":
        return {"name": name, "kind": kind,
                "categories": sorted({MISSING_CATEGORY if is_missing(c) else c.strip() for c in cells})}
    if kind == "boolean":
        lower = [c.lower() for c in cells if not is_missing(c)]
        true = sorted({w for w in lower if w in ("true", "yes", "y", "t")})
        false = sorted(set(lower) - set(true))
        return {"name": name, "kind": kind, "true": true, "false": false,
                "fill": float(np.mean([w in true for w in lower])) if lower else 0.0}
    parts = list(("year", "month", "day", "weekday") + (("hour",) if "%H" in entry["format"] else ()))
    feature = {"name": name, "kind": "date", "format": entry["format"], "parts": parts}
    table = _dates(feature, cells, where)
    feature["parts"] = [{"part": p, **_fit_numbers(f"{name}.{p}", table[:, k])} for k, p in enumerate(parts)]
    return feature


def _encode_boolean(feature: dict, cells: list[str], where: Where) -> np.ndarray:
    out = np.empty((len(cells), 1))
    for i, cell in enumerate(cells):
        word = cell.strip().lower()
        if is_missing(cell):
            out[i, 0] = feature["fill"]
        elif word in feature["true"] or word in feature["false"]:
            out[i, 0] = float(word in feature["true"])
        else:
            raise UserError(f"column '{feature['name']}', {where(i)}: '{cell}' is not one of "
                            f"{', '.join(feature['true'] + feature['false'])}")
    return out


def _encode_category(feature: dict, cells: list[str]) -> np.ndarray:
    lookup = {c: k for k, c in enumerate(feature["categories"])}
    out = np.zeros((len(cells), len(lookup)))
    for i, cell in enumerate(cells):
        k = lookup.get(MISSING_CATEGORY if is_missing(cell) else cell.strip())
        if k is not None:  # a value unseen in training stays all zeros
            out[i, k] = 1.0
    return out


def encode_feature(feature: dict, cells: list[str], where: Where) -> np.ndarray:
    """float64 (N, k) for one fitted feature."""
    kind = feature["kind"]
    if kind == "category":
        return _encode_category(feature, cells)
    if kind == "boolean":
        return _encode_boolean(feature, cells, where)
    if kind == "numeric":
        values, stats = _numbers(feature, cells, where)[:, None], [feature]
    else:
        names = {**feature, "parts": [p["part"] for p in feature["parts"]]}
        values, stats = _dates(names, cells, where), feature["parts"]
    for k, s in enumerate(stats):
        column = values[:, k]
        column[np.isnan(column)] = s["median"]
        values[:, k] = standardise(column, s["mean"], s["std"])
    return values


def feature_names(feature: dict) -> list[str]:
    """The names of the encoded columns one feature makes."""
    if feature["kind"] == "category":
        return [f"{feature['name']}={c}" for c in feature["categories"]]
    if feature["kind"] == "date":
        return [f"{feature['name']}.{p['part']}" for p in feature["parts"]]
    return [feature["name"]]
