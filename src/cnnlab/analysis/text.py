"""Fixed-width text tables for terminals, logs and golden tests."""

from __future__ import annotations

from typing import Sequence


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, rule: bool = True) -> list[str]:
    """Lines of a table: the first column left-aligned, the others right-aligned (numbers)."""
    cells = [list(header)] + [list(row) for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    lines = []
    for number, line in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))).rstrip())
        if number == 0 and rule:
            lines.append("  ".join("-" * w for w in widths))
    return lines
