"""Report safety, re-checked with every string a user controls at once: the study, architecture
and variant names, class names from the dataset file, the dataset's path, the spec's verbatim
text (comments included) and the error of a failed run that quotes the spec. None of them may
become markup: no element, attribute or script comes from them, in the HTML or the Markdown.

Every payload calls ``alert(``; the report's own markup never does, so any ``alert(`` in a
script, an event-handler attribute or a URL means a user string escaped its escaping.
"""

from __future__ import annotations

import html.parser
from unittest import mock

import numpy as np
import pytest
import yaml

from cnnlab.api import run_study

from .conftest import write_digits_npz

from cnnlab.train import Trainer

report = pytest.importorskip("cnnlab.report", reason="the report is not part of this build")

PAYLOADS = {
    "study": '</title><script>alert("study")</script>',
    "architecture": '<img src=x onerror=alert("architecture")>',
    "variant": '"><svg onload=alert("variant")>',
    "class": "<script>alert('class')</script>",
    "path": "<iframe src=javascript:alert('path')>",
    "comment": "--></style></script><script>alert(\"comment\")</script>",
    "selector": "<a href=javascript:alert('selector')>x</a>",
}


class Markup(html.parser.HTMLParser):
    """Collects what a browser would treat as markup: tags, attributes, script and style text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.code: list[str] = []
        self.text: list[str] = []
        self._in_code = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += [(name, value or "") for name, value in attrs]
        self._in_code = tag in ("script", "style")

    def handle_endtag(self, tag):
        self._in_code = False

    def handle_data(self, data):
        (self.code if self._in_code else self.text).append(data)


@pytest.fixture(scope="module")
def hostile_folder(tmp_path_factory):
    base = tmp_path_factory.mktemp("report-safety")
    data = base / PAYLOADS["path"].replace("/", "")
    data.mkdir()
    npz = write_digits_npz(data / "digits.npz")
    arrays = dict(np.load(npz))
    names = [f"{digit} {PAYLOADS['class']}" for digit in range(10)]
    np.savez(npz, **arrays, class_names=np.array(names))
    study = {
        "name": PAYLOADS["study"],
        "dataset": {"name": "npz", "path": str(npz), "split": {"train": 200, "val": 100, "test": 100}},
        "architectures": {PAYLOADS["architecture"]: [{"conv": {"filters": 2, "kernel": 3}}, "flatten", {"dense": 10}]},
        "variants": {PAYLOADS["variant"]: {}, "broken": {"dropout": {"rate": 0.1, "after": ["conv"]}}},
        "train": {"epochs": 1, "batch_size": 64},
    }
    spec = base / "study.yaml"
    spec.write_text(f"# {PAYLOADS['comment']}\n" + yaml.safe_dump(study, allow_unicode=True), encoding="utf-8")
    out = base / "out"
    # A hostile selector is now refused when the spec loads; the error text of a run that fails in
    # training still reaches the report, so the broken variant fails there with the payload.
    fit = Trainer.fit

    def fit_or_fail(trainer):
        if any(layer.kind == "dropout" for layer in trainer.built.resolved):
            raise RuntimeError(f"no layer {PAYLOADS['selector']}")
        return fit(trainer)

    with mock.patch.object(Trainer, "fit", fit_or_fail):
        result = run_study(spec, out, threads=1)
    assert result.outcome.statuses.get("done") == 1, result.outcome.describe()  # the broken variant failed
    return out


def test_no_user_string_becomes_markup_in_the_html_report(hostile_folder):
    path = report.write_report(hostile_folder)
    text = path.read_text(encoding="utf-8")
    for where, payload in PAYLOADS.items():
        assert payload not in text, f"the {where} string is in the report unescaped"
    parsed = Markup()
    parsed.feed(text)
    assert not [name for name, _ in parsed.attributes if name.startswith("on")], "an event-handler attribute"
    # Attribute text (an image's alt) may quote a name; an attribute that loads or runs must not.
    live = [(name, value) for name, value in parsed.attributes
            if name in ("href", "src", "action", "formaction", "srcset", "style") and ("alert(" in value or "javascript:" in value)]
    assert not live, live
    assert not [code for code in parsed.code if "alert(" in code], "a payload inside a script or style"
    assert not {"svg", "iframe"} & set(parsed.tags), parsed.tags
    images = [value for name, value in parsed.attributes if name == "src"]
    assert all(value.startswith("data:image/") for value in images), "an image from somewhere else"
    # The strings are still there, as text a reader sees.
    shown = "".join(parsed.text)
    assert PAYLOADS["study"] in shown and PAYLOADS["architecture"] in shown


@pytest.mark.slow
def test_no_user_string_becomes_markup_in_the_markdown_report(hostile_folder):
    path = report.write_report(hostile_folder, format="md")
    text = path.read_text(encoding="utf-8")
    outside_code = "".join(part for index, part in enumerate(text.split("`")) if index % 2 == 0)
    for where, payload in PAYLOADS.items():
        assert payload not in outside_code, f"the {where} string is in the Markdown as live HTML"
    parsed = Markup()
    parsed.feed(outside_code)
    assert not [name for name, _ in parsed.attributes if name.startswith("on")]
    assert not [code for code in parsed.code if "alert(" in code]
    assert not [value for _, value in parsed.attributes if "javascript:" in value]
