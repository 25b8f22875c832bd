"""The HTML report: one self-contained file rendered from jinja2 templates (autoescape on).

Styles and the small sort script are inlined from ``templates/``; figures are embedded as
base64 ``data:`` URIs. A Content-Security-Policy allows nothing from the network, only data:
images, inline styles and the one inline script whose hash it names: even a string that slipped
past escaping could neither run nor fetch anything.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from typing import Any

import jinja2

from cnnlab.report.document import Figure, Section


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("cnnlab.report", "templates"),
        autoescape=True,  # every template, whatever its extension: user strings are always escaped
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["data_uri"] = lambda figure: "data:image/png;base64," + base64.b64encode(figure.png).decode("ascii")
    return env


def _asset(name: str) -> str:
    env = environment()
    source, _, _ = env.loader.get_source(env, name)
    return source


def render_html(data: Any, sections: list[Section]) -> str:
    """The whole report as one HTML string."""
    script = _asset("sort.js")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    policy = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
              f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")
    figures = sum(1 for section in sections for block in section.blocks if isinstance(block, Figure))
    return environment().get_template("report.html.j2").render(
        data=data, sections=sections, present=[s for s in sections if s.present], style=_asset("report.css"),
        script=script, policy=policy, figure_count=figures,
    )
