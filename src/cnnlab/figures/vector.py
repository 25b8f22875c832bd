"""Figures as SVG or PDF, for papers (``cnnlab report --format md --figures svg``, ``cnnlab explain
--figures pdf``): lines and text stay sharp at any zoom and can be edited.

Every figure is rendered by ``style.png_bytes``, and the report and explain keep only those PNG
bytes (a report block, an explain ``Figure``). So while ``keeping(format)`` is active, png_bytes
hands each figure here as well: it is rendered once more in that format and kept under its PNG,
and a writer looks the vector twin up by the PNG it holds (``Vectors.file``). No drawing function
needs to know about formats, and outside ``keeping`` nothing changes and nothing is rendered twice.

Image grids (filters, feature maps, examples) stay raster inside the vector file: an image is
pixels in any format; their titles and labels become vector text.

Shared kit, the lowest layer: imports only matplotlib and the standard library.
"""

from __future__ import annotations

import hashlib
import io
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Iterator, Optional

from matplotlib import rc_context
from matplotlib.figure import Figure as MplFigure

FORMATS = ("png", "svg", "pdf")
# The same figure gives the same bytes on every run and matplotlib version: no dates, no
# producer string, ids salted with a constant. TrueType fonts in PDF: journals refuse Type 3.
_METADATA = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}, "pdf": {"CreationDate": None, "Creator": None, "Producer": None}}
_RC = {"svg.hashsalt": "cnnlab", "pdf.fonttype": 42}


@dataclass
class Vectors:
    """The vector twins rendered while ``keeping`` was active, by the digest of their PNG."""

    format: str
    kept: dict[str, bytes] = field(default_factory=dict)

    def get(self, png: bytes) -> Optional[bytes]:
        return self.kept.get(_digest(png))

    def file(self, png: bytes) -> tuple[str, bytes]:
        """(extension, bytes) to write for a figure held as ``png``: its twin in the chosen format,
        or the PNG itself when it was drawn outside ``keeping`` (or the format is png)."""
        twin = self.get(png) if self.format != "png" else None
        return (self.format, twin) if twin is not None else ("png", png)


_ACTIVE: ContextVar[Optional[Vectors]] = ContextVar("cnnlab_vectors", default=None)


def check_format(fmt: str) -> str:
    """``fmt`` when it is one of FORMATS; a ValueError naming them otherwise."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown figure format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    return fmt


@contextmanager
def keeping(fmt: str) -> Iterator[Vectors]:
    """While active, every figure rendered to PNG is also rendered as ``fmt`` (svg or pdf) and kept
    in the yielded ``Vectors``; with ``png`` nothing extra is done."""
    vectors = Vectors(check_format(fmt))
    token = _ACTIVE.set(vectors if fmt != "png" else None)
    try:
        yield vectors
    finally:
        _ACTIVE.reset(token)


def keep(figure: MplFigure, png: bytes, tight: bool) -> None:
    """Called by ``png_bytes`` with each figure it rendered: its vector twin, when one is wanted."""
    vectors = _ACTIVE.get()
    if vectors is not None:
        vectors.kept[_digest(png)] = render(figure, vectors.format, tight)


def render(figure: MplFigure, fmt: str, tight: bool = False) -> bytes:
    """The figure as ``fmt`` bytes, laid out as ``png_bytes`` lays it out (same size, same border)."""
    buffer = io.BytesIO()
    # SVG writes each artist's gid as its element id: the tags ``figures.drawn`` reads hold a
    # control character (no XML may) and repeat across artists (no two ids may). Off while writing.
    tagged = [(artist, artist.get_gid()) for artist in figure.findobj(lambda a: a.get_gid() is not None)]
    try:
        for artist, _ in tagged:
            artist.set_gid(None)
        with rc_context(_RC):
            figure.savefig(buffer, format=check_format(fmt), dpi=figure.dpi, bbox_inches="tight" if tight else None,
                           pad_inches=0.08, facecolor=figure.get_facecolor(), metadata=_METADATA.get(fmt, {}))
    finally:
        for artist, gid in tagged:
            artist.set_gid(gid)
    return buffer.getvalue()


def _digest(png: bytes) -> str:
    return hashlib.sha256(png).hexdigest()
