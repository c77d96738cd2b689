"""A tiny document model (headings, paragraphs, tables, code, images) rendered to Markdown and to HTML.

The detail page of a defense is written once as blocks and rendered twice,
so the Markdown file and the HTML section always say the same thing.
Text is escaped by each renderer; links and emphasis are inline parts.
"""
from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True)
class Link:
    text: str
    md: str  # target from the Markdown file
    html: str  # target on the HTML page


@dataclass(frozen=True)
class Strong:
    text: str


@dataclass(frozen=True)
class Small:
    """Secondary text beside a figure (an interval, an n): smaller and grey on the page."""

    text: str


Inline = Union[str, Link, Strong, Small]
Text = Union[str, list]  # a string or a list of Inline parts


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    anchor: str = ""


@dataclass(frozen=True)
class Para:
    parts: Text
    cls: str = ""


@dataclass(frozen=True)
class Bullets:
    items: list


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list]  # cells: Text
    numeric: list[bool] = field(default_factory=list)  # right-aligned columns
    cls: str = "detail"


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Image:
    src: str  # relative to the Markdown file
    alt: str
    png: bytes = b""


Block = Union[Heading, Para, Bullets, Table, Code, Image]


def _parts(text: Text) -> list:
    return [text] if isinstance(text, str) else list(text)


_HTML_START = re.compile(r"<(?=[A-Za-z/!?])")  # where Markdown would start raw HTML or an autolink


def md_text(text: str) -> str:
    """Text from a summary as Markdown shows it: no raw HTML (``<script>`` appears as text), no stray code spans.

    Only a ``<`` that could open a tag, comment or autolink is escaped, so
    ordinary text such as "<= 0.02" is written as it is.
    """
    return _HTML_START.sub("&lt;", text).replace("`", "\\`")


def _md_inline(text: Text, cell: bool = False) -> str:
    out = []
    for part in _parts(text):
        if isinstance(part, Link):
            out.append(f"[{md_text(part.text)}]({part.md})")
        elif isinstance(part, Strong):
            out.append(f"**{md_text(part.text)}**")
        elif isinstance(part, Small):
            out.append(md_text(part.text))
        else:
            out.append(md_text(str(part)))
    joined = "".join(out)
    return joined.replace("|", "\\|").replace("\n", " ") if cell else joined


def to_markdown(blocks: list[Block]) -> str:
    lines: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            lines += ["#" * b.level + " " + md_text(b.text), ""]
        elif isinstance(b, Para):
            lines += [_md_inline(b.parts), ""]
        elif isinstance(b, Bullets):
            lines += ["- " + _md_inline(item) for item in b.items] + [""]
        elif isinstance(b, Table):
            numeric = b.numeric or [False] * len(b.headers)
            lines.append("| " + " | ".join(_md_inline(h, True) for h in b.headers) + " |")
            lines.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
            lines += ["| " + " | ".join(_md_inline(c, True) for c in row) + " |" for row in b.rows]
            lines.append("")
        elif isinstance(b, Code):
            lines += ["```", b.text.rstrip("\n"), "```", ""]
        elif isinstance(b, Image):
            lines += [f"![{b.alt}]({b.src})", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def e(text: object) -> str:
    return html.escape(str(text), quote=True)


def html_inline(text: Text) -> str:
    out = []
    for part in _parts(text):
        if isinstance(part, Link):
            out.append(f'<a href="{e(part.html)}">{e(part.text)}</a>')
        elif isinstance(part, Strong):
            out.append(f"<b>{e(part.text)}</b>")
        elif isinstance(part, Small):
            out.append(f'<span class="sub">{e(part.text)}</span>')
        else:
            out.append(e(part))
    return "".join(out)


def png_src(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def to_html(blocks: list[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            anchor = f' id="{e(b.anchor)}"' if b.anchor else ""
            out.append(f"<h{b.level}{anchor}>{e(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            out.append(f'<p{f" class={chr(34)}{e(b.cls)}{chr(34)}" if b.cls else ""}>{html_inline(b.parts)}</p>')
        elif isinstance(b, Bullets):
            out.append("<ul>" + "".join(f"<li>{html_inline(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            numeric = b.numeric or [False] * len(b.headers)
            head = "".join(f'<th scope="col">{html_inline(h)}</th>' for h in b.headers)
            rows = "".join("<tr>" + "".join(f'<td{" class=" + chr(34) + "num" + chr(34) if n else ""}>'
                                            f"{html_inline(c)}</td>" for c, n in zip(row, numeric)) + "</tr>\n"
                           for row in b.rows)
            out.append(f'<table class="{e(b.cls)}"><thead><tr>{head}</tr></thead>\n<tbody>\n{rows}</tbody></table>')
        elif isinstance(b, Code):
            out.append(f"<pre><code>{e(b.text)}</code></pre>")
        elif isinstance(b, Image):
            out.append(f'<figure><img alt="{e(b.alt)}" src="{png_src(b.png)}"><figcaption>{e(b.alt)}</figcaption>'
                       "</figure>")
    return "\n".join(out) + "\n"
