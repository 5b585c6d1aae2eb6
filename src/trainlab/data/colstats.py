"""Per-column statistics of a table's raw values, for `trainlab data stats` on a CSV dataset.

Training sees standardised numbers and one-hot categories; these are the values as written in
the file (all rows, both splits), under the column names training uses (`c0`, `c1`, ... when the
file has no header). Read with pandas, apart from the parser that feeds training (data/table.py).
"""
from __future__ import annotations

from pathlib import Path

MISSING = ["", "na", "NA", "nan", "NaN", "?"]  # the markers data/table.py treats as missing


def read_raw(path: str | Path, columns: list[str]):
    """The file as a DataFrame of strings named `columns`; a header row equal to them is dropped."""
    import pandas as pd

    frame = pd.read_csv(path, header=None, dtype=str, keep_default_na=False, skipinitialspace=True,
                        skip_blank_lines=True)
    frame = frame.apply(lambda col: col.str.strip())
    frame.columns = list(columns)[:frame.shape[1]]
    first = [str(v) for v in frame.iloc[0]] if len(frame) else []
    # data/table.py names an empty header cell c<j>, and every column c<j> when there is no header
    if first and all(v == c or (v == "" and c == f"c{j}") for j, (c, v) in enumerate(zip(frame.columns, first))):
        frame = frame.iloc[1:]
    return frame.reset_index(drop=True)


def column_stats(frame) -> list[dict]:
    """One dict per column of a `read_raw` frame: name, kind (numeric or text), count, missing, and
    mean/std/min/max for numbers or unique/top/top_count for text."""
    import pandas as pd

    out = []
    for name in frame.columns:
        cells = frame[name]
        present = cells[~cells.str.lower().isin([m.lower() for m in MISSING])]
        numbers = pd.to_numeric(present, errors="coerce")
        row = {"name": name, "count": int(len(present)), "missing": int(len(cells) - len(present))}
        if len(present) and numbers.notna().all():
            row.update(kind="numeric", mean=float(numbers.mean()), std=float(numbers.std()),
                       min=float(numbers.min()), max=float(numbers.max()))
        else:
            top = present.value_counts()
            row.update(kind="text", unique=int(len(top)), top=str(top.index[0]) if len(top) else "",
                       top_count=int(top.iloc[0]) if len(top) else 0)
        out.append(row)
    return out


def format_column_stats(path: str | Path, spec: dict) -> str:
    """A table of `column_stats` with the target column marked."""
    frame = read_raw(path, spec["columns"])
    stats, rows = column_stats(frame), len(frame)
    width = max(6, *(len(s["name"]) for s in stats)) + (len(" (target)"))
    lines = [f"{Path(path).name}: {rows} rows, {len(stats)} columns, raw values as in the file (all rows)",
             f"{'column':<{width}} {'kind':<7} {'count':>6} {'missing':>7} {'mean':>10} {'std':>10} "
             f"{'min':>10} {'max':>10}"]
    for s in stats:
        name = s["name"] + (" (target)" if s["name"] == spec.get("target") else "")
        head = f"{name:<{width}} {s['kind']:<7} {s['count']:>6} {s['missing']:>7}"
        if s["kind"] == "numeric":
            lines.append(f"{head} {s['mean']:>10.4g} {s['std']:>10.4g} {s['min']:>10.4g} {s['max']:>10.4g}")
        else:
            lines.append(f"{head} {s['unique']:>4} distinct, most common '{s['top']}' ({s['top_count']}x)")
    return "\n".join(lines)
