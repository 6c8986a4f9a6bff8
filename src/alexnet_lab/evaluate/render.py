"""Rendering report sections (tables, rows of figures) as Markdown or as self-contained HTML.

Both renderers take the same :class:`Section` list, so the two report files always say the same
thing. The HTML needs nothing beside it: CSS is inline and each PNG is a base64 data URI.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Table:
    """A table of text cells; the first column is a row label, the rest are values."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Figures:
    """PNG figures shown side by side: (caption, path) per figure."""

    items: tuple[tuple[str, Path], ...]


@dataclass(frozen=True)
class Section:
    """A titled part of the report with a one-line note and a table or a row of figures."""

    title: str
    note: str
    body: Table | Figures


CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1400px;
       padding: 0 1em; color: #1f2328; }
h1 { border-bottom: 1px solid #d0d7de; padding-bottom: .3em; }
p.note { color: #59636e; font-size: .9em; }
table { border-collapse: collapse; margin: .5em 0 1.5em; font-size: .9em; }
th, td { border: 1px solid #d0d7de; padding: .3em .7em; }
th { background: #f6f8fa; }
td { text-align: right; font-variant-numeric: tabular-nums; }
td:first-child { text-align: left; font-weight: 600; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
figure { margin: 0; flex: 1 1 0; min-width: 320px; }
figure img { width: 100%; height: auto; border: 1px solid #d0d7de; }
figcaption { font-weight: 600; text-align: center; margin-bottom: .3em; }
"""


def _md_cell(text: str) -> str:
    # A pipe would end the cell and a newline the row.
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(_md_cell(h) for h in headers) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(headers) - 1)) + "|"]
    lines += ["| " + " | ".join(_md_cell(cell) for cell in row) + " |" for row in rows]
    return lines


def _md_figures(figures: Figures, links: Mapping[Path, str]) -> list[str]:
    # A one-row table puts the runs' figures side by side in GitHub-style Markdown viewers.
    captions = [caption for caption, _ in figures.items]
    targets = [links.get(path) or f"<{path.as_posix()}>" for _, path in figures.items]
    images = [f"![{_md_cell(caption)}]({target})" for caption, target in zip(captions, targets)]
    return ["| " + " | ".join(_md_cell(c) for c in captions) + " |",
            "|" + "|".join([":---:"] * len(captions)) + "|",
            "| " + " | ".join(images) + " |"]


def render_markdown(title: str, sections: Sequence[Section], links: Mapping[Path, str]) -> str:
    """The report as Markdown; figures link to ``links[path]`` (a path relative to the file)."""
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", "", section.note, ""]
        if isinstance(section.body, Table):
            lines += _md_table(section.body.headers, section.body.rows)
        else:
            lines += _md_figures(section.body, links)
        lines.append("")
    return "\n".join(lines)


def png_data_uri(path: Path) -> str:
    """A PNG file as a ``data:image/png;base64,...`` URI."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _html_table(table: Table) -> list[str]:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.headers)
    body = ["<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in table.rows]
    return ["<table>", f"<thead><tr>{head}</tr></thead>", "<tbody>", *body, "</tbody>", "</table>"]


def _html_figures(figures: Figures) -> list[str]:
    items = [
        f'<figure><figcaption>{html.escape(caption)}</figcaption>'
        f'<img alt="{html.escape(caption, quote=True)}" src="{png_data_uri(path)}"></figure>'
        for caption, path in figures.items
    ]
    return ['<div class="figures">', *items, "</div>"]


def render_html(title: str, sections: Sequence[Section]) -> str:
    """The report as one HTML page with inline CSS and embedded PNGs."""
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{html.escape(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
             f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        parts += [f"<h2>{html.escape(section.title)}</h2>", f'<p class="note">{html.escape(section.note)}</p>']
        parts += _html_table(section.body) if isinstance(section.body, Table) else _html_figures(section.body)
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)
