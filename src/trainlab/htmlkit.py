"""Building blocks of the self-contained HTML pages (run report, comparison): page, tables, images.

Pages carry their own CSS and a Content-Security-Policy that allows no scripts and no network: images
are data URIs (PNG, or SVG charts from svgchart.py), so a report opens offline from any folder.
"""
from __future__ import annotations

import base64
import io
from html import escape
from typing import Any

CSS = """
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1500px;
       padding: 0 20px; color: #1f2328; background: #fff; }
h1 { font-size: 26px; margin-bottom: 4px; } h2 { font-size: 20px; margin-top: 32px;
     border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
.lead { color: #57606a; margin-top: 0; } .note { color: #57606a; font-size: 13px; }
.facts { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
.fact { border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 14px; min-width: 130px; }
.fact b { display: block; font-size: 20px; } .fact span { color: #57606a; font-size: 12px; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #d0d7de; padding: 3px 8px; text-align: right; }
th { background: #f6f8fa; } td.l, th.l { text-align: left; }
.scroll { max-height: 420px; max-width: 100%; overflow: auto; display: inline-block; }
table.cm td { min-width: 34px; text-align: center; } table.cm th.true { text-align: left; }
.examples { display: flex; flex-wrap: wrap; gap: 10px; }
figure { margin: 0; border: 2px solid #cf222e; border-radius: 4px; padding: 4px; text-align: center; }
figure.ok { border-color: #1a7f37; }
figure img { width: 96px; height: 96px; image-rendering: pixelated; object-fit: contain; }
figcaption { font-size: 12px; max-width: 130px; }
.wrong { color: #cf222e; } .right { color: #1a7f37; }
"""
POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


_LEFT = ' class="l"'


class Raw(str):
    """HTML that `table` inserts as it is (already escaped or built here)."""


def cell(value: Any) -> str:
    return value if isinstance(value, Raw) else escape("" if value is None else str(value))


def page(title: str, body: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{POLICY}\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def table(header: list[str] | None, rows: list[list[Any]], *, left: int = 1, cls: str = "",
          scroll: bool = False) -> str:
    """An HTML table; the first `left` columns are left-aligned (names), the rest right (numbers);
    header None: no header row (key/value lists)."""
    def row(cells: list[Any], tag: str) -> str:
        return "<tr>" + "".join(f"<{tag}{_LEFT if i < left else ''}>{cell(c)}</{tag}>"
                                for i, c in enumerate(cells)) + "</tr>"

    attrs = f' class="{cls}"' if cls else ""
    head = f"<thead>{row(header, 'th')}</thead>" if header else ""
    html = (f"<table{attrs}>{head}<tbody>"
            + "".join(row(r, "td") for r in rows) + "</tbody></table>")
    return f'<div class="scroll">{html}</div>' if scroll else html


def section(title: str, *parts: str, anchor: str = "") -> str:
    attrs = f' id="{anchor}"' if anchor else ""
    return f"<section{attrs}><h2>{escape(title)}</h2>" + "".join(parts) + "</section>"


def facts(items: list[tuple[str, str]]) -> str:
    """Headline numbers as boxes: [(value, label)]."""
    return '<div class="facts">' + "".join(f'<div class="fact"><b>{escape(v)}</b><span>{escape(k)}</span></div>'
                                           for v, k in items) + "</div>"


def svg_img(svg: str, alt: str) -> str:
    """An SVG chart as an <img>: a data URI, so it counts among document.images and needs no file."""
    data = base64.b64encode(svg.encode()).decode()
    return f'<img src="data:image/svg+xml;base64,{data}" alt="{escape(alt)}">'


def png_img(image: Any, alt: str) -> str:
    """A PIL image as an inline PNG <img>."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return f'<img src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}" alt="{escape(alt)}">'


def confusion_table(confusion: list[list[int]], classes: list[str]) -> str:
    """Counts with true classes as rows and predicted as columns, each cell shaded white to blue."""
    peak = max((v for row in confusion for v in row), default=0)
    head = "".join(f"<th>{escape(c)}</th>" for c in classes)
    rows = []
    for name, counts in zip(classes, confusion):
        cells = []
        for v in counts:
            f = v / peak if peak else 0.0
            r, g, b = (int(255 + f * (c - 255)) for c in (8, 69, 148))  # white to dark blue
            text = "#fff" if f > 0.5 else "#1f2328"  # dark cells get white text
            cells.append(f'<td style="background:rgb({r},{g},{b});color:{text}">{v}</td>')
        rows.append(f'<tr><th class="true">{escape(name)}</th>{"".join(cells)}</tr>')
    return (f'<div class="scroll" style="max-height:640px"><table class="cm"><thead><tr>'
            f'<th class="l">true \\ predicted</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')
