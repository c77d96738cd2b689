"""One page, two renderings: the experiment page is a list of blocks written as Markdown and as HTML.

Building the page once as blocks (heading, paragraph, code, table, list,
image) and rendering each block twice keeps the Markdown file and the
self-contained HTML page (inline CSS, plots as base64 PNG) saying the same
thing. Neither holds a timestamp: the same results give the same bytes.
"""
from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from typing import Union

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 1.5rem;
       color: #1b1f23; background: #fff; line-height: 1.45; max-width: 90rem; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #d0d7de; }
pre { background: #f6f8fa; padding: .6rem .8rem; overflow-x: auto; border: 1px solid #d0d7de; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .85rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: .82rem; white-space: nowrap; margin: .6rem 0; }
th, td { border: 1px solid #d0d7de; padding: .2rem .45rem; } th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafbfc; }
figure { margin: 1rem 0; } img { max-width: 100%; height: auto; border: 1px solid #d0d7de; }
figcaption { font-size: .8rem; color: #57606a; }
"""


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str  # may hold `code` and **bold** spans


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...] = field(default=())  # per column: right-aligned numbers


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Image:
    path: str  # relative to the page
    caption: str
    png: bytes


Block = Union[Heading, Paragraph, Code, Table, Bullets, Image]


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + b.text)
        elif isinstance(b, Paragraph):
            out.append(b.text)
        elif isinstance(b, Code):
            out.append("```bash\n" + b.text + "\n```")
        elif isinstance(b, Table):
            lines = ["| " + " | ".join(_md_cell(h) for h in b.header) + " |",
                     "|" + "|".join("---:" if (b.numeric[i] if i < len(b.numeric) else False) else "---"
                                    for i in range(len(b.header))) + "|"]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            out.append("\n".join(lines))
        elif isinstance(b, Bullets):
            out.append("\n".join(f"- {item}" for item in b.items))
        elif isinstance(b, Image):
            out.append(f"![{b.caption}]({b.path})")
    return "\n\n".join(out) + "\n"


def _inline(text: str) -> str:
    """Escape, then turn `code` and **bold** spans into tags."""
    escaped = html.escape(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


def _html_table(b: Table) -> str:
    head = "".join(f"<th>{_inline(h)}</th>" for h in b.header)
    rows = []
    for row in b.rows:
        cells = "".join(f'<td class="num">{_inline(c)}</td>' if (b.numeric[i] if i < len(b.numeric) else False)
                        else f"<td>{_inline(c)}</td>" for i, c in enumerate(row))
        rows.append(f"<tr>{cells}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def to_html(blocks: list[Block], title: str) -> str:
    body: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f"<h{b.level}>{_inline(b.text)}</h{b.level}>")
        elif isinstance(b, Paragraph):
            body.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Code):
            body.append(f"<pre><code>{html.escape(b.text)}</code></pre>")
        elif isinstance(b, Table):
            body.append(_html_table(b))
        elif isinstance(b, Bullets):
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Image):
            data = base64.b64encode(b.png).decode("ascii")
            body.append(f'<figure><img alt="{html.escape(b.caption)}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{html.escape(b.caption)}</figcaption></figure>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")
