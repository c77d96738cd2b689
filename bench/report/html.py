"""The leaderboard as one self-contained HTML page.

Everything is inline (CSS, a few lines of vanilla JavaScript for sorting,
plots as base64 PNG), so the page opens offline and can be published as a
static file. The page holds no timestamp: it changes only when the results
or the drawing libraries change.
"""
from __future__ import annotations

import base64
import html
from typing import Iterable

import matplotlib

from .plots import Plot
from .tables import Board

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 1.5rem;
       color: #1b1f23; background: #fff; line-height: 1.4; }
h1 { font-size: 1.6rem; margin: 0 0 .4rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem;
     border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; }
p.lead { max-width: 60rem; } .meta { color: #57606a; font-size: .9rem; }
.scroll { overflow-x: auto; max-width: 100%; }
table.board { border-collapse: collapse; font-size: .85rem; white-space: nowrap; }
table.board th, table.board td { border: 1px solid #d0d7de; padding: .25rem .5rem; }
table.board th { background: #f6f8fa; cursor: pointer; user-select: none; position: sticky; top: 0; }
table.board th:hover { background: #eaeef2; }
table.board th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: .7em; }
table.board th[aria-sort="descending"]::after { content: " \\25BC"; font-size: .7em; }
table.board td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.board td.wrap { white-space: normal; min-width: 16rem; max-width: 32rem; font-size: .8rem; }
table.board tr:nth-child(even) td { background: #fafbfc; }
table.board tr.flagged td { background: #ffebe9; }
table.board tr.flagged td:first-child { box-shadow: inset 4px 0 0 #cf222e; }
.flag-mark { color: #cf222e; font-weight: bold; cursor: help; }
.legend-flag { background: #ffebe9; border-left: 4px solid #cf222e; padding: .1rem .4rem; }
.plots { display: flex; flex-wrap: wrap; gap: 1rem; margin-top: 1rem; }
.plots figure { margin: 0; border: 1px solid #d0d7de; padding: .5rem; }
.plots img { max-width: 100%; height: auto; display: block; }
.plots figcaption { font-size: .8rem; color: #57606a; }
.warnings { background: #fff8c5; border: 1px solid #d4a72c; padding: .5rem 1rem; max-width: 60rem; }
.warnings li { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .8rem; }
footer { margin-top: 2rem; color: #57606a; font-size: .8rem; }
"""

# Sorting by hand: a few lines of vanilla JS keep the page free of any external library.
SORT_JS = """
(function () {
  function cellValue(row, col, numeric) {
    var cell = row.cells[col];
    var v = cell.getAttribute('data-v');
    if (v === null || v === '') return null;
    return numeric ? parseFloat(v) : v;
  }
  function sortTable(table, col, th) {
    var numeric = th.getAttribute('data-type') === 'num';
    var current = th.getAttribute('aria-sort');
    var ascending = current ? current === 'descending' : !numeric;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var va = cellValue(a, col, numeric), vb = cellValue(b, col, numeric);
      if (va === null || vb === null) {
        if (va === null && vb === null) return a.getAttribute('data-i') - b.getAttribute('data-i');
        return va === null ? 1 : -1;  /* missing values last, either direction */
      }
      var c = numeric ? va - vb : (va < vb ? -1 : va > vb ? 1 : 0);
      if (c === 0) return a.getAttribute('data-i') - b.getAttribute('data-i');
      return ascending ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(th.parentNode.cells, function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.board'), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.addEventListener('click', function () { sortTable(table, col, th); });
      th.addEventListener('keydown', function (e) {
        if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); sortTable(table, col, th); }
      });
    });
  });
})();
"""

LEAD = (
    "Accuracies are fractions of the evaluated test points. <b>Robust accuracy</b> is the per-sample worst case "
    "over every attack of the battery at the headline budget. "
    "<span class=\"legend-flag\"><span class=\"flag-mark\">⚠</span> Red rows</span> were flagged by the "
    "evaluation's checks (for example gradient masking): their robust accuracy may only reflect hidden "
    "gradients, not robustness; hover the mark or read the <i>flags</i> column. "
    "Only the latest run per defense and config hash is shown; datasets and threat models are never mixed in "
    "one table. Click a column header to sort."
)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _sort_value(raw: object) -> str:
    if raw is None:
        return ""
    if isinstance(raw, float):
        return repr(raw)
    return str(raw)


def table_html(board: Board) -> str:
    """The board's table with sort keys on every cell and flagged rows marked."""
    head = "".join(
        f'<th scope="col" tabindex="0" data-key="{_e(c.key)}" data-type="{"num" if c.numeric else "text"}" '
        f'title="{_e(c.help)}">{_e(c.header)}</th>'
        for c in board.columns
    )
    body: list[str] = []
    for i, row in enumerate(board.rows):
        flags = "; ".join(row.flags)
        attrs = f' class="flagged" title="flagged: {_e(flags)}"' if row.flags else ""
        cells = []
        for c in board.columns:
            text = _e(c.text(row))
            if c.key == "defense" and row.flags:
                text = f'<span class="flag-mark" title="{_e(flags)}">⚠</span> {text}'
            cls = "num" if c.numeric else ("wrap" if c.key in ("flags", "notes") else "")
            cls_attr = f' class="{cls}"' if cls else ""
            cells.append(f'<td{cls_attr} data-v="{_e(_sort_value(c.raw(row)))}">{text}</td>')
        body.append(f'<tr data-i="{i}"{attrs}>' + "".join(cells) + "</tr>")
    return (
        f'<div class="scroll"><table class="board" id="table-{_e(board.slug)}">\n'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody></table></div>"
    )


def _plots_html(plots: Iterable[Plot]) -> str:
    figures = [
        f'<figure><img alt="{_e(p.title)}" src="data:image/png;base64,{base64.b64encode(p.png).decode("ascii")}">'
        f"<figcaption>{_e(p.title)} ({_e(p.filename)})</figcaption></figure>"
        for p in plots
    ]
    return '<div class="plots">\n' + "\n".join(figures) + "\n</div>" if figures else '<p class="meta">No plots: no data.</p>'


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _notes_html(board: Board) -> str:
    items = [f"<li>{_e(r.run)}: {_e('; '.join(r.notes))}</li>" for r in board.rows if r.notes]
    if board.superseded:
        runs = ", ".join(r.path for r in board.superseded)
        items.append(f"<li>{len(board.superseded)} older run(s) with the same config hash not shown: {_e(runs)}</li>")
    return "<ul class=\"meta\">" + "".join(items) + "</ul>" if items else ""


def render_index(boards: list[Board], plots: dict[str, list[Plot]], warnings: list[str]) -> str:
    """The whole page: one section per board (table, notes, plots), then skipped files."""
    nav = "".join(f'<li><a href="#board-{_e(b.slug)}">{_e(b.title)}</a> ({_rows(len(b.rows))})</li>' for b in boards)
    sections = []
    for b in boards:
        flagged = sum(1 for r in b.rows if r.flags)
        sections.append(
            f'<section id="board-{_e(b.slug)}">\n<h2>{_e(b.title)}</h2>\n'
            f'<p class="meta">{_rows(len(b.rows))}, {flagged} flagged. Files: '
            f'<a href="{_e(b.slug)}.md">{_e(b.slug)}.md</a>, <a href="{_e(b.slug)}.csv">{_e(b.slug)}.csv</a>.</p>\n'
            f"{table_html(b)}\n{_notes_html(b)}\n{_plots_html(plots.get(b.slug, []))}\n</section>"
        )
    if not boards:
        sections.append('<p class="meta">No results yet: run <code>bench run --defense NAME</code>.</p>')
    warn = ""
    if warnings:
        warn = (
            '<section class="warnings" id="warnings"><h2>Skipped summaries</h2><ul>'
            + "".join(f"<li>{_e(w)}</li>" for w in warnings)
            + "</ul></section>"
        )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="bench report; matplotlib {_e(matplotlib.__version__)}">\n'
        f"<title>bench leaderboards</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<header>\n<h1>bench leaderboards</h1>\n<p class=\"lead\">{LEAD}</p>\n<ul>{nav}</ul>\n</header>\n"
        f"{warn}\n" + "\n".join(sections) + "\n"
        "<footer>Made by <code>bench report</code> from results/*/summary.json; "
        "regenerate with <code>bench report</code>.</footer>\n"
        f"<script>{SORT_JS}</script>\n</body>\n</html>\n"
    )
