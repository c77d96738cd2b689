"""The leaderboard as one self-contained HTML page: headline tables first, then each defense's section.

Everything is inline (CSS, a few lines of vanilla JavaScript for sorting,
plots as base64 PNG), so the page opens offline and can be published as a
static file. Each headline number sits above its interval and n and links to
the defense's section. The page holds no timestamp: it changes only when
the results or the drawing libraries change.
"""
from __future__ import annotations

from typing import Iterable, Optional

import matplotlib

from .advice import advise
from .detail import detail_blocks
from .doc import e, png_src, to_html
from .markdown import LEGEND
from .plots import Plot
from .tables import Board

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 1.5rem;
       color: #1b1f23; background: #fff; line-height: 1.4; }
h1 { font-size: 1.6rem; margin: 0 0 .4rem; } h2 { font-size: 1.3rem; margin-top: 2rem;
     border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; }
h3 { font-size: 1.1rem; margin-top: 1.6rem; } h4 { font-size: .95rem; margin: 1rem 0 .3rem; }
p.lead { max-width: 62rem; margin: .2rem 0; } .meta { color: #57606a; font-size: .88rem; }
table.board { border-collapse: collapse; font-size: .88rem; margin: .6rem 0; }
table.board th, table.board td { border: 1px solid #d0d7de; padding: .25rem .45rem; vertical-align: top; }
table.board th { background: #f6f8fa; cursor: pointer; user-select: none; font-weight: 600; font-size: .8rem;
                 max-width: 7.5rem; text-align: left; }
table.board th:hover { background: #eaeef2; }
table.board th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: .7em; }
table.board th[aria-sort="descending"]::after { content: " \\25BC"; font-size: .7em; }
table.board td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.board td.name { white-space: nowrap; }
table.board a.v { color: inherit; text-decoration: none; font-weight: 600; }
table.board a.v:hover { text-decoration: underline; }
.sub { display: block; color: #57606a; font-size: .72rem; font-weight: normal; }
p .sub, li .sub, td .sub { display: inline; }
table.board td.num .sub { display: block; }
table.board tr:nth-child(even) td { background: #fafbfc; }
table.board tr.flagged td { background: #ffebe9; }
table.board tr.flagged td:first-child { box-shadow: inset 4px 0 0 #cf222e; }
.tie { color: #57606a; font-weight: bold; cursor: help; margin-left: .2rem; }
a.flag { color: #cf222e; font-weight: bold; text-decoration: none; white-space: nowrap; }
ul.legend { font-size: .82rem; color: #3d444d; max-width: 70rem; padding-left: 1.2rem; margin: .3rem 0; }
table.detail { border-collapse: collapse; font-size: .8rem; margin: .4rem 0; }
table.detail th, table.detail td { border: 1px solid #d0d7de; padding: .15rem .4rem; }
table.detail th { background: #f6f8fa; text-align: left; } table.detail td.num { text-align: right; }
section.defense { border-top: 1px solid #d0d7de; margin-top: 1.5rem; }
pre { background: #f6f8fa; padding: .5rem; font-size: .78rem; overflow-x: auto; max-width: 60rem; }
.plots { display: flex; flex-wrap: wrap; gap: 1rem; margin-top: 1rem; }
figure { margin: .5rem 0; border: 1px solid #d0d7de; padding: .5rem; max-width: 100%; box-sizing: border-box; }
figure img { max-width: 100%; height: auto; display: block; } figcaption { font-size: .8rem; color: #57606a; }
.warnings { background: #fff8c5; border: 1px solid #d4a72c; padding: .5rem 1rem; max-width: 60rem; }
.warnings li { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .8rem; }
footer { margin-top: 2rem; color: #57606a; font-size: .8rem; }
"""

# Sorting by hand: a few lines of vanilla JS keep the page free of any external library.
SORT_JS = """
(function () {
  function cellValue(row, col, numeric) {
    var v = row.cells[col].getAttribute('data-v');
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
    "<b>robust</b> is the per-sample worst case over the whole attack battery; each number shows its 95% interval, "
    "with its n in the column head or beside it. <span class=\"tie\">≈</span>: a paired test cannot separate the "
    "row from the one above; <a class=\"flag\">⚠ k</a>: k warnings (e.g. gradient masking) make the number "
    "suspect. Rows are ranked together only on the same data, threat model, points and battery; click a name or a "
    "number for the defense's full evaluation."
)


def _sort_value(raw: object) -> str:
    return "" if raw is None else (repr(raw) if isinstance(raw, float) else str(raw))


def _th(key: str, header: str, help_: str, numeric: bool, n: Optional[int] = None) -> str:
    sub = f'<span class="sub">n = {n}</span>' if n is not None else ""
    return (f'<th scope="col" tabindex="0" data-key="{e(key)}" data-type="{"num" if numeric else "text"}" '
            f'title="{e(help_)}">{e(header)}{sub}</th>')


def _row(board: Board, i: int) -> str:
    row, anchor = board.rows[i], board.anchor(board.rows[i])
    tie = ""
    if board.tied(i):
        tie = (f'<span class="tie" title="not distinguishable from #{board.ranks[i - 1]} above: McNemar p = '
               f'{board.tie_p[i]:.3g} on the same {row.n_test} points">≈</span>')
    cells = [f'<td class="num" data-v="{i}">{board.ranks[i]}{tie}</td>',
             f'<td class="name" data-v="{e(board.label(row))}"><a href="#{e(anchor)}">{e(board.label(row))}</a></td>']
    for col in board.columns:
        cell, shared = col.cell(row), col.uniform_n(board.rows)
        if cell.value is None:
            cells.append(f'<td class="num" data-v="" title="{e(col.help)}">{e(cell.text)}</td>')
            continue
        own_n = f"n = {cell.n}" if cell.n is not None and shared is None else ""  # else the header says it
        sub = " · ".join(t for t in (cell.interval_text, own_n) if t)
        subs = f'<span class="sub">{e(sub)}</span>' if sub else ""
        cells.append(f'<td class="num" data-v="{e(_sort_value(cell.value))}"><a class="v" href="#{e(anchor)}">'
                     f"{e(cell.text)}</a>{subs}</td>")
    titles = "; ".join(sorted({advise(f).title for f in row.flags}))
    flag = (f'<a class="flag" href="#{e(anchor)}-flags" title="{e(titles)}">⚠ {len(row.flags)}</a>'
            if row.flags else "—")
    cells.append(f'<td data-v="{len(row.flags)}">{flag}</td>')
    return f'<tr data-i="{i}"{" class=" + chr(34) + "flagged" + chr(34) if row.flags else ""}>' + "".join(cells) + "</tr>"


def table_html(board: Board) -> str:
    """The headline table: at most ten columns, each number over its interval and n, sortable."""
    head = _th("rank", "#", "rank by robust accuracy; ≈: a paired test cannot separate it from the row above", True)
    head += _th("defense", "defense", "the defense; click for its full evaluation", False)
    head += "".join(_th(c.key, c.header, c.help, True, c.uniform_n(board.rows)) for c in board.columns)
    head += _th("flags", "flags", "warnings the evaluation raised; click for what they mean", True)
    body = "\n".join(_row(board, i) for i in range(len(board.rows)))
    return (f'<table class="board" id="table-{e(board.slug)}">\n<thead><tr>{head}</tr></thead>\n'
            f"<tbody>\n{body}\n</tbody></table>")


def _plots_html(plots: Iterable[Plot]) -> str:
    figures = [f'<figure><img alt="{e(p.title)}" src="{png_src(p.png)}"><figcaption>{e(p.title)} '
               f"({e(p.filename)})</figcaption></figure>" for p in plots]
    return '<div class="plots">\n' + "\n".join(figures) + "\n</div>" if figures else ""


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def board_html(board: Board, plots: list[Plot], run_plots: dict[int, Plot]) -> str:
    flagged = sum(1 for r in board.rows if r.flags)
    sections = []
    for i, row in enumerate(board.rows):
        png = run_plots[i].png if i in run_plots else None
        blocks = detail_blocks(board, i, png, level=3, html_home=f"#board-{board.slug}")
        sections.append(f'<section class="defense">\n{to_html(blocks)}</section>')
    notes = [f"<li>{e(r.run)}: {e('; '.join(r.notes))}</li>" for r in board.rows if r.notes]
    if board.superseded:
        notes.append(f"<li>{len(board.superseded)} older run(s) with the same config hash not shown: "
                     f"{e(', '.join(r.path for r in board.superseded))}</li>")
    return (f'<section id="board-{e(board.slug)}">\n<h2>{e(board.title)}</h2>\n'
            f'<p class="meta">{e(board.settings.label())}; {_rows(len(board.rows))}, {flagged} flagged. Files: '
            f'<a href="{e(board.slug)}.md">{e(board.slug)}.md</a>, <a href="{e(board.slug)}.csv">{e(board.slug)}.csv'
            f"</a>.</p>\n{table_html(board)}\n"
            '<ul class="legend">' + "".join(f"<li>{e(t)}</li>" for t in LEGEND) + "</ul>\n"
            + (f'<ul class="meta">{"".join(notes)}</ul>\n' if notes else "")
            + f"{_plots_html(plots)}\n" + "\n".join(sections) + "\n</section>")


def render_index(boards: list[Board], plots: dict[str, list[Plot]], run_plots: dict[str, dict[int, Plot]],
                 warnings: list[str]) -> str:
    """The whole page: one section per board (table, legend, plots, defenses), then skipped files."""
    nav = "".join(f'<li><a href="#board-{e(b.slug)}">{e(b.title)}</a>: {e(b.settings.label())} '
                  f"({_rows(len(b.rows))})</li>" for b in boards)
    sections = [board_html(b, plots.get(b.slug, []), run_plots.get(b.slug, {})) for b in boards]
    if not boards:
        sections.append('<p class="meta">No results yet: run <code>bench run --defense NAME</code>.</p>')
    warn = ""
    if warnings:
        warn = ('<section class="warnings" id="warnings"><h2>Skipped summaries</h2><ul>'
                + "".join(f"<li>{e(w)}</li>" for w in warnings) + "</ul></section>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="generator" content="bench report; matplotlib {e(matplotlib.__version__)}">\n'
        f"<title>bench leaderboards</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<header>\n<h1>bench leaderboards</h1>\n<p class=\"lead\">{LEAD}</p>\n<ul class=\"meta\">{nav}</ul>\n"
        f"</header>\n{warn}\n" + "\n".join(sections) + "\n"
        "<footer>Made by <code>bench report</code> from results/*/summary.json and the per-sample files beside "
        "them; regenerate with <code>bench report</code>.</footer>\n"
        f"<script>{SORT_JS}</script>\n</body>\n</html>\n"
    )
