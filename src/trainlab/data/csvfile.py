"""Reading CSV files into raw string cells with pandas: encoding, delimiter, quoting, header detection.

Every cell comes back as a stripped string, so that column inference (schema.py) sees exactly what
the file holds and errors can quote it. The rules:
- Encoding: UTF-8 (a leading BOM dropped), else Latin-1, which decodes any byte; the one used is
  reported. `.gz` files are gunzipped first.
- Delimiter: sniffed among , ; tab | on the first 64 KiB (csv.Sniffer), else a comma.
- Quoting and embedded delimiters/newlines: pandas' C parser.
- Numbers: "1,234,567.5" (quoted, in a comma file) is a number. In a semicolon file where numbers
  are written with a decimal comma ("3,5", "1.234,5") and none with a decimal point, those cells
  are rewritten as "3.5", "1234.5" (the European spreadsheet export).
- Lines whose cells are all empty are skipped (spreadsheets export trailing ",,,," lines).
- header="auto": the first row is a header when one of its cells is text above a column that is
  numeric below it, or when all of its cells are text and none of them recurs in its own column
  below (an all-text table). "yes"/"no" override. Headerless columns are named c0, c1, ...
"""
from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from .idx import read_bytes

# pandas' default missing markers, plus "?" (the UCI data sets' marker); compared case-insensitively
MISSING_MARKERS = frozenset(m.lower() for m in (
    "", "?", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"))
DELIMITERS = ",;\t|"
SNIFF_CHARS = 65536  # enough lines to see the delimiter, cheap on big files
HEADER_SAMPLE = 1000  # rows looked at to detect a header
THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")  # "1,234,567.5" (a quoted cell in a comma file)
DECIMAL_COMMA = re.compile(r"^[+-]?(\d{1,3}(\.\d{3})+|\d*),\d+$")  # "3,5", "-0,25", "1.234,5"
DECIMAL_POINT = re.compile(r"^[+-]?[\d,]*\.\d+$")  # "0.5", "2,000.5": the file writes decimal points


@dataclass
class CsvFile:
    columns: list[str]
    rows: list[list[str]]  # stripped cells, one list per data row
    lines: list[int]  # each row's 1-based line number in the file
    encoding: str  # "utf-8" or "latin-1"
    delimiter: str
    decimal: str = "."  # "," when a semicolon file writes numbers with a decimal comma


def is_missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING_MARKERS


def to_number(cell: str) -> float | None:
    """The cell as a finite float, or None; inf and overflowing values (1e400) are not numbers."""
    cell = cell.strip()
    if THOUSANDS.match(cell):
        cell = cell.replace(",", "")
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def is_text(cell: str) -> bool:
    return not is_missing(cell) and to_number(cell) is None


def decode_text(path: Path) -> tuple[str, str]:
    """(text, encoding): UTF-8 with an optional BOM, else Latin-1."""
    data = read_bytes(path)
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def sniff_delimiter(text: str) -> str:
    sample = text[:SNIFF_CHARS]
    if "\n" in sample.rstrip("\n"):
        sample = sample[:sample.rstrip("\n").rfind("\n")]  # whole lines only: a cut line confuses the sniffer
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:  # one column, or no consistent delimiter
        return ","


def _shape(text: str, sep: str) -> tuple[list[int], list[int]]:
    """Each record's cell count and first line number (quoted fields may span lines)."""
    reader = csv.reader(io.StringIO(text), delimiter=sep)
    widths, lines, line = [], [], 1
    try:
        for cells in reader:
            widths.append(len(cells))
            lines.append(line)
            line = reader.line_num + 1
    except csv.Error:  # pandas reports the same problem with more context
        return [], []
    return widths, lines


def _parse(path: Path, text: str, sep: str) -> tuple[list[list[str]], list[int]]:
    """Non-blank records as stripped strings and their line numbers; short rows are kept short so
    that the width check names their line (pandas itself pads them with empty cells)."""
    import pandas as pd

    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, header=None, dtype=str, keep_default_na=False,
                            skip_blank_lines=False, engine="c")
    except pd.errors.EmptyDataError:
        raise UserError(f"{path}: the file holds no rows") from None
    except (pd.errors.ParserError, ValueError) as e:
        message = str(e).strip().splitlines()[-1]
        wide = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
        if wide:
            expected, line, saw = wide.groups()
            message = f"line {line} has {saw} cells but the first row has {expected}"
        raise UserError(f"{path}: {message}") from None
    widths, starts = _shape(text, sep)
    if len(widths) != len(frame):  # the two readers disagree on an odd file: trust pandas' cells
        widths, starts = [frame.shape[1]] * len(frame), list(range(1, len(frame) + 1))
    records, lines = [], []
    for raw, width, line in zip(frame.itertuples(index=False, name=None), widths, starts):
        cells = [c.strip() for c in raw]
        if any(cells):
            records.append(cells[:width] if width else cells)
            lines.append(line)
    return records, lines


def _decimal_comma(records: list[list[str]]) -> list[list[str]] | None:
    """Rows with decimal-comma numbers rewritten with a point, or None when the file does not use them."""
    cells = [c for row in records for c in row]
    if any(DECIMAL_POINT.match(c) for c in cells) or not any(DECIMAL_COMMA.match(c) for c in cells):
        return None
    return [[c.replace(".", "").replace(",", ".") if DECIMAL_COMMA.match(c) else c for c in row] for row in records]


def _looks_like_header(first: list[str], rest: list[list[str]]) -> bool:
    rest = rest[:HEADER_SAMPLE]
    for j, cell in enumerate(first):
        below = [r[j] for r in rest if j < len(r) and not is_missing(r[j])]
        if is_text(cell) and below and all(to_number(v) is not None for v in below):
            return True
    if all(is_text(c) for c in first):
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


def read_csv(path: Path, header: str = "auto") -> CsvFile:
    """The file as stripped string cells (see the module docstring for the rules)."""
    path = Path(path)
    if header not in ("auto", "yes", "no"):
        raise UserError(f"header must be 'auto', 'yes' or 'no', got '{header}'")
    text, encoding = decode_text(path)
    sep = sniff_delimiter(text)
    records, lines = _parse(path, text, sep)
    if not records:
        raise UserError(f"{path}: the file holds no rows")
    rewritten = _decimal_comma(records) if sep == ";" else None
    records = rewritten or records
    first, rest = records[0], records[1:]
    if header == "yes" or (header == "auto" and _looks_like_header(first, rest)):
        columns, records, lines, origin = _header_names(path, first), rest, lines[1:], "the header"
    else:
        columns, origin = [f"c{j}" for j in range(len(first))], "the first row"
    for line, cells in zip(lines, records):
        if len(cells) != len(columns):
            raise UserError(f"{path}: line {line} has {len(cells)} cells but {origin} has {len(columns)}")
    if not records:
        raise UserError(f"{path}: no data rows after the header")
    return CsvFile(columns, records, lines, encoding, sep, "," if rewritten else ".")
