"""``--format md``: the same sections as Markdown, with the figures as files beside it (PNG, or
SVG or PDF with ``--figures``).

Tables become pipe tables, figures relative links into the figures folder, collapsed blocks
plain fenced code (a lab report has no "click to expand"). User strings are escaped so a name
never turns into markup or raw HTML.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Optional
from urllib.parse import quote

from cnnlab.report.document import Block, Figure, Section

_SPECIAL = re.compile(r"([\\`*_\[\]|~#])")


def escape(text: str) -> str:
    """Inline Markdown text shown as itself: no emphasis, links, tables or raw HTML."""
    text = " ".join(str(text).split("\n"))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", text)


def fence(text: str, language: str = "") -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    marks = "`" * max(3, longest + 1)
    return f"{marks}{language}\n{text.rstrip()}\n{marks}"


def _png(png: bytes) -> tuple[str, bytes]:
    return "png", png


def figure_files(sections: list[Section], file: Callable[[bytes], tuple[str, bytes]] = _png
                 ) -> dict[int, tuple[str, bytes]]:
    """A file name and its bytes for each figure (by ``id`` of the block): numbered in order, named
    by its stem, in the format ``file`` gives for its PNG (PNG itself by default)."""
    found, number = {}, 0
    for section in sections:
        for block in section.blocks:
            if isinstance(block, Figure):
                number += 1
                extension, content = file(block.png)
                found[id(block)] = (f"{number:02d}-{block.name}.{extension}", content)
    return found


def render_markdown(data: Any, sections: list[Section], folder_name: str,
                    file: Optional[Callable[[bytes], tuple[str, bytes]]] = None) -> tuple[str, dict[str, bytes]]:
    """The Markdown text and the figure files it links to (name -> bytes) in ``folder_name``;
    ``file`` chooses each figure's format (see ``figure_files``)."""
    found = figure_files(sections, file or _png)
    names = {key: name for key, (name, _) in found.items()}
    files = dict(found.values())
    out = [f"# {escape(data.name)}", "", "*cnnlab study report*", ""]
    for section in sections:
        if not section.present:
            out += [f"> **{escape(section.title)}** left out: {escape(section.reason or '')}", ""]
            continue
        out += [f"## {escape(section.title)}", ""]
        for block in section.blocks:
            out += _block(block, names, folder_name) + [""]
    out.append(f"*Built {escape(data.built_at)} from the run store in {escape(str(data.folder))}, without retraining.*")
    return "\n".join(out) + "\n", files


def _block(block: Block, names: dict[int, str], folder_name: str) -> list[str]:
    kind = block.kind
    if kind == "paragraph":
        return [escape(block.text)]
    if kind == "note":
        return [f"*{escape(block.text)}*"]
    if kind == "warning":
        return [f"> **{escape(block.text)}**"]
    if kind == "subheading":
        return [f"### {escape(block.text)}"]
    if kind == "facts":
        return [f"- **{escape(label)}:** {escape(value)}" for label, value in block.items]
    if kind == "table":
        return _table(block)
    if kind == "figure":
        link = quote(f"{folder_name}/{names[id(block)]}")
        lines = [f"![{escape(block.alt)}]({link})"]
        if block.caption:
            lines += ["", f"*{escape(block.caption)}*"]
        return lines
    if kind == "preformatted":
        lines = [f"**{escape(block.label)}**", ""] if block.label else []
        language = "yaml" if block.label and block.label.startswith("Spec") else ""
        return lines + [fence(block.text, language)]
    raise ValueError(f"no Markdown for block kind {kind!r}")


def _table(block: Any) -> list[str]:
    lines = []
    if block.caption:
        lines += [f"**{escape(block.caption)}**", ""]
    numeric = [bool(block.rows) and any(row[i].numeric for row in block.rows) for i in range(len(block.columns))]
    lines.append("| " + " | ".join(escape(column) for column in block.columns) + " |")
    lines.append("|" + "|".join("---:" if right else "---" for right in numeric) + "|")
    for row in block.rows:
        lines.append("| " + " | ".join(escape(cell.text) for cell in row) + " |")
    return lines
