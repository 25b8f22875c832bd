"""The report as a document: sections made of a few kinds of blocks, and the section registry.

A section builder is a function ``ReportData -> Section``, registered with ``@section(order)``.
It returns either blocks or, when it has nothing to show, a one-line reason (``Section.absent``);
the HTML and Markdown writers render every block kind, so a new section needs no template
change. Builders live in the modules named in ``SECTION_MODULES``, imported on first use.

    @section(order=25)
    def findings(data: ReportData) -> Section:
        if not data.findings:
            return Section.absent("findings", "Findings", "the study has a single configuration")
        return Section("findings", "Findings", [Paragraph(text) for text in data.findings])
"""

from __future__ import annotations

import importlib
import re
import struct
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Optional, Union

# Modules whose import registers section builders (with @section); add yours here.
SECTION_MODULES = ("cnnlab.report.sections", "cnnlab.report.statistics", "cnnlab.report.evaluation",
                   "cnnlab.report.explanations")


# ---------------------------------------------------------------- blocks


@dataclass
class Paragraph:
    """Plain text (escaped by every writer)."""

    text: str
    kind: ClassVar[str] = "paragraph"


@dataclass
class Note:
    """A short muted line: how to read what is above or below."""

    text: str
    kind: ClassVar[str] = "note"


@dataclass
class Caution:
    """What a reader must not miss before trusting the numbers below (drawn boxed, in every format)."""

    text: str
    kind: ClassVar[str] = "warning"


@dataclass
class Subheading:
    text: str
    anchor: Optional[str] = None
    kind: ClassVar[str] = "subheading"


@dataclass
class Facts:
    """Label / value pairs (a definition list in HTML, a two-column table in Markdown)."""

    items: list[tuple[str, str]]
    kind: ClassVar[str] = "facts"


@dataclass
class Cell:
    """A table cell: its text, and the value it sorts by (a number, or None for 'missing')."""

    text: str
    sort: Union[float, int, str, None] = None
    numeric: bool = False


# Cells for the usual kinds of value: numbers right-aligned and sorted by value, blanks when missing.


def percent(value: Optional[float], digits: int = 2) -> Cell:
    return Cell("" if value is None else f"{100 * value:.{digits}f}", None if value is None else 100 * value, True)


def number(value: Optional[float], digits: int = 4) -> Cell:
    return Cell("" if value is None else f"{value:.{digits}f}", value, True)


def count(value: Optional[int]) -> Cell:
    return Cell("" if value is None else f"{value:,}", value, True)


def text(value: str) -> Cell:
    return Cell(value, value)


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Cell]]
    anchor: Optional[str] = None
    caption: Optional[str] = None
    sortable: bool = False
    titles: dict[str, str] = field(default_factory=dict)  # column -> tooltip saying what it measures
    kind: ClassVar[str] = "table"


@dataclass
class Figure:
    """A PNG figure; ``name`` is a file-safe stem (used for Markdown's figure files)."""

    name: str
    png: bytes
    alt: str
    caption: Optional[str] = None
    scale: float = 1.5  # pixels per CSS pixel it was drawn at (crisp on high-density screens)
    kind: ClassVar[str] = "figure"

    @property
    def size(self) -> tuple[int, int]:
        """Width and height in pixels, read from the PNG header."""
        width, height = struct.unpack(">II", self.png[16:24])
        return width, height

    @property
    def css_width(self) -> int:
        return round(self.size[0] / self.scale)


@dataclass
class Preformatted:
    """Verbatim text (a spec, a model summary), optionally collapsed behind its label."""

    text: str
    label: Optional[str] = None
    collapsed: bool = False
    kind: ClassVar[str] = "preformatted"


Block = Union[Paragraph, Note, Caution, Subheading, Facts, Table, Figure, Preformatted]


# ---------------------------------------------------------------- sections


@dataclass
class Section:
    """A titled part of the report; ``reason`` instead of blocks when it has nothing to show."""

    anchor: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    reason: Optional[str] = None

    @classmethod
    def absent(cls, anchor: str, title: str, reason: str) -> "Section":
        return cls(anchor, title, [], reason)

    @property
    def present(self) -> bool:
        return self.reason is None

    def figures(self) -> list[Figure]:
        return [block for block in self.blocks if isinstance(block, Figure)]


SectionBuilder = Callable[[Any], Section]
_BUILDERS: list[tuple[float, str, SectionBuilder]] = []


def section(order: float) -> Callable[[SectionBuilder], SectionBuilder]:
    """Register a section builder; sections appear by ``order`` (header 10, results 20, curves 30,
    models 40, best configuration 50: leave gaps for new ones)."""

    def register(builder: SectionBuilder) -> SectionBuilder:
        name = f"{builder.__module__}.{builder.__qualname__}"
        _BUILDERS[:] = [entry for entry in _BUILDERS if entry[1] != name]  # a reload replaces, not duplicates
        _BUILDERS.append((order, name, builder))
        _BUILDERS.sort(key=lambda entry: (entry[0], entry[1]))
        return builder

    return register


def section_builders() -> list[SectionBuilder]:
    for module in SECTION_MODULES:
        importlib.import_module(module)
    return [builder for _, _, builder in _BUILDERS]


def build_sections(data: Any) -> list[Section]:
    """Every registered section for this study, in order (absent ones included, with their reason)."""
    return [builder(data) for builder in section_builders()]


def slug(text: str, fallback: str = "item") -> str:
    """A file- and anchor-safe name: lower-case letters, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or fallback
