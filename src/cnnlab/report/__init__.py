"""The study report: one self-contained HTML file (or Markdown plus PNG figures) built from the store.

    from cnnlab.report import write_report
    write_report("runs/quickstart")                  # runs/quickstart/report.html
    write_report("runs/quickstart", format="md")     # runs/quickstart/report.md + report_figures/
    write_report("runs/quickstart", format="md", figures="svg")  # ... with SVG figures, for a paper

Flow: ``data.gather`` reads the store into plain dataclasses; each registered section builder
(``document.section``; the built-in ones are in ``sections.py``) turns them into blocks, drawing
figures with ``figures.py``; ``html.py`` or ``markdown.py`` writes the blocks. Nothing is retrained.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Union

from cnnlab.errors import CnnlabError
from cnnlab.fsutil import write_bytes_atomic, write_text_atomic

if TYPE_CHECKING:
    from cnnlab.report.data import ReportData
    from cnnlab.report.document import Section

FORMATS = ("html", "md")
FIGURE_FORMATS = ("png", "svg", "pdf")


class ReportError(CnnlabError):
    """The report cannot be written as asked (unknown format, unusable output path)."""


def default_output(folder: Path, format: str, study: Optional[str] = None) -> Path:
    """``DIR/report.html``; ``DIR/report-<study>.html`` when the folder holds several studies."""
    from cnnlab.report.document import slug

    return folder / (f"report-{slug(study, 'study')}.{format}" if study else f"report.{format}")


def figures_folder(output: Path) -> Path:
    """Where ``--format md`` puts its figure files: ``report_figures/`` beside ``report.md``."""
    return output.with_name(f"{output.stem}_figures")


def write_report(folder: Union[str, Path], output: Optional[Union[str, Path]] = None, *, study: Optional[str] = None,
                 format: str = "html", data_dir: Optional[Union[str, Path]] = None, figures: str = "png") -> Path:
    """Build the report of a study in the store at ``folder`` and write it atomically; return its path.

    ``study`` names the study when the folder holds several. ``format`` is ``html`` (one
    self-contained file, default ``DIR/report.html``) or ``md`` (``DIR/report.md`` plus a folder
    of figures beside it, PNG or, with ``figures`` svg or pdf, vector files for a paper).
    ``data_dir`` is where the dataset is, for explain figures that feed images (feature maps,
    patches); without it the usual lookup applies.
    """
    from cnnlab.figures.vector import keeping
    from cnnlab.report.data import gather
    from cnnlab.report.document import build_sections
    from cnnlab.store import Store

    if format not in FORMATS:
        raise ReportError(f"unknown report format '{format}'; choose one of: {', '.join(FORMATS)}")
    if figures not in FIGURE_FORMATS:
        raise ReportError(f"unknown figure format '{figures}'; choose one of: {', '.join(FIGURE_FORMATS)}")
    if format == "html" and figures != "png":
        raise ReportError(f"the HTML report embeds its figures as PNG; {figures.upper()} figures come with the "
                          f"Markdown report: add --format md")
    folder = Path(folder)
    if output is not None and Path(output).is_dir():
        raise ReportError(f"{output} is a folder; give the report's file name (for example {Path(output) / ('report.' + format)})")
    with Store(folder, create=False) as store:
        data = gather(store, study)
        data.data_dir = Path(data_dir) if data_dir else None
        several = len(store.studies()) > 1
    path = Path(output) if output is not None else default_output(folder, format, data.name if several else None)
    with keeping(figures) as vectors:  # every figure drawn now is also kept as SVG or PDF
        sections = build_sections(data)
    try:
        if format == "html":
            write_html(path, data, sections)
        else:
            write_markdown(path, data, sections, vectors.file)
    except OSError as error:  # read-only folder, full disk, file-size limit: say so, keep the runs
        raise ReportError(f"cannot write the report to {path}: {error.strerror or error}; the runs in {folder} are "
                          "kept: rebuild it later with 'cnnlab report'") from None
    if data.damaged_runs:
        # What could be read is in the report; the status is still an error, as for 'cnnlab ls',
        # so that a script learns the report lacks these runs.
        count = len(data.damaged_runs)
        raise ReportError(f"{path} was written without {count} run{'s' if count > 1 else ''} whose row in "
                          f"{folder / 'cnnlab.sqlite'} cannot be read (the report names them): "
                          + " | ".join(data.damaged_runs))
    return path


def write_html(path: Path, data: ReportData, sections: list[Section]) -> None:
    """Render gathered data and built sections as one HTML file, written atomically."""
    from cnnlab.report.html import render_html

    write_text_atomic(path, render_html(data, sections))


def write_markdown(path: Path, data: ReportData, sections: list[Section],
                   file: Optional[Callable[[bytes], tuple[str, bytes]]] = None) -> None:
    """Render them as Markdown plus a folder of figures (stale figures of ours removed); ``file``
    turns a figure's PNG into the (extension, bytes) to write (``figures.vector.Vectors.file``)."""
    from cnnlab.report.markdown import render_markdown

    path = Path(path)
    figures = figures_folder(path)
    text, files = render_markdown(data, sections, figures.name, file)
    for name, content in files.items():
        write_bytes_atomic(figures / name, content)
    if figures.is_dir():  # figures of an earlier build that this one no longer has (in any format)
        for stale in figures.iterdir():
            if stale.name not in files and re.fullmatch(r"\d\d-[a-z0-9-]+\.(png|svg|pdf)", stale.name):
                stale.unlink()
    write_text_atomic(path, text)  # last: the Markdown never links to a figure not yet written


__all__ = ["FIGURE_FORMATS", "FORMATS", "ReportError", "default_output", "figures_folder", "write_html", "write_markdown",
           "write_report"]
