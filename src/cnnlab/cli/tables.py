"""The formats ``cnnlab ls`` and ``cnnlab compare`` print a table in: ``table`` (fixed-width text,
for the terminal), ``csv`` (every field of ``--json``, one row each, for a spreadsheet or pandas),
``md`` (a pipe table, for a Markdown report) and ``latex`` (a ``tabular`` in a ``table``, for a
paper), besides ``json``.

CSV carries the raw values (fractions, full precision, as JSON does) so that a script reads the
same numbers; Markdown and LaTeX carry the cells the terminal shows (percents, intervals), to be
read. Nested JSON fields become dotted columns (``sweep.conv.kernel``); lists are joined by spaces.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Optional, Sequence

TABLE_FORMATS = ("table", "csv", "md", "latex", "json")

_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
          "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$", "Δ": r"$\Delta$",
          "<": r"\textless{}", ">": r"\textgreater{}"}


def flat(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """One JSON record as one CSV row: nested mappings as dotted keys, lists joined by spaces."""
    row: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            row.update(flat(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            row[name] = " ".join("" if item is None else str(item) for item in value)
        else:
            row[name] = value
    return row


def csv_text(records: Sequence[dict[str, Any]]) -> str:
    """The records as CSV, one row each; the columns are every key any record has, in first-seen order."""
    rows = [flat(record) for record in records]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(column) is None else row[column] for column in columns])
    return buffer.getvalue()


def _numeric(text: str) -> bool:
    head = text.strip().split(" ")[0].replace(",", "").lstrip("+-")
    return bool(head) and head.replace(".", "", 1).isdigit()


def _right(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[bool]:
    """Which columns to right-align: those whose filled cells all start with a number."""
    return [i > 0 and any(row[i] for row in rows) and all(_numeric(row[i]) for row in rows if row[i])
            for i in range(len(columns))]


def markdown_text(columns: Sequence[str], rows: Sequence[Sequence[str]], note: str = "") -> str:
    """A pipe table (numbers right-aligned), its cells escaped; the note below it in italics."""
    from cnnlab.report.markdown import escape

    lines = ["| " + " | ".join(escape(c) for c in columns) + " |",
             "|" + "|".join("---:" if right else "---" for right in _right(columns, rows)) + "|"]
    lines += ["| " + " | ".join(escape(cell) for cell in row) + " |" for row in rows]
    if note:
        lines += ["", f"*{escape(note)}*"]
    return "\n".join(lines) + "\n"


def latex_escape(text: str) -> str:
    """Text shown as itself in LaTeX: its special characters escaped, ± and Δ as mathematics."""
    return "".join(_LATEX.get(char, char) for char in str(text))


def latex_text(columns: Sequence[str], rows: Sequence[Sequence[str]], caption: str = "",
               label: Optional[str] = None) -> str:
    """A ``table`` with a ``tabular`` (plain ``\\hline`` rules: no package needed), its cells escaped."""
    spec = "".join("r" if right else "l" for right in _right(columns, rows))
    lines = [r"\begin{table}[ht]", r"\centering"]
    if caption:
        lines.append(r"\caption{" + latex_escape(caption) + "}")
    if label:
        lines.append(r"\label{" + label + "}")
    lines += [r"\begin{tabular}{" + spec + "}", r"\hline",
              " & ".join(latex_escape(c) for c in columns) + r" \\", r"\hline"]
    lines += [" & ".join(latex_escape(cell) for cell in row) + r" \\" for row in rows]
    lines += [r"\hline", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def render(fmt: str, records: Sequence[dict[str, Any]], columns: Sequence[str], rows: Sequence[Sequence[str]],
           note: str = "", label: Optional[str] = None) -> str:
    """``records`` as CSV, or the display ``columns`` and ``rows`` as Markdown or LaTeX (``note``
    under the Markdown table, the LaTeX caption)."""
    if fmt == "csv":
        return csv_text(records)
    if fmt == "md":
        return markdown_text(columns, rows, note)
    if fmt == "latex":
        return latex_text(columns, rows, note, label)
    raise ValueError(f"no table format {fmt!r}; known: {', '.join(TABLE_FORMATS)}")
