"""The report file itself: self-contained, every section, escaped, Markdown twin, absent sections
said in one line, atomic and small."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cnnlab.cli.report import write_and_announce
from cnnlab.fsutil import TEMP_PREFIX
from cnnlab.report import ReportError, figures_folder, write_html, write_markdown, write_report
from cnnlab.report.document import Section, section, section_builders
from tests.report.conftest import XSS_ARCHITECTURE, XSS_NAME

SECTIONS = ("study", "findings", "results", "comparisons", "curves", "models", "best", "explain")
MAX_BYTES = 10 * 1024 * 1024


class Outline(HTMLParser):
    """Which elements a page has: sections, omitted lines, tags with URLs, script count."""

    def __init__(self) -> None:
        super().__init__()
        self.sections, self.omitted, self.urls, self.scripts, self.tags = [], [], [], 0, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "section":
            self.sections.append(attrs.get("id"))
        if tag == "p" and "omitted" in (attrs.get("class") or ""):
            self.omitted.append(attrs.get("id"))
        if tag == "script":
            self.scripts += 1
        for name in ("src", "href", "action", "poster", "data"):
            if attrs.get(name):
                self.urls.append((tag, attrs[name]))


def outline(path: Path) -> Outline:
    parser = Outline()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_quickstart_report_is_one_self_contained_file_under_10_mb(quickstart_report):
    assert quickstart_report.stat().st_size < MAX_BYTES
    page = outline(quickstart_report)
    assert page.sections == list(SECTIONS) and page.omitted == ["kfold"]  # a fixed validation split
    assert "link" not in page.tags and "iframe" not in page.tags
    assert page.scripts == 1  # the inline sort script, nothing loaded
    for tag, url in page.urls:  # figures are data URIs; links only jump inside the page
        assert (tag == "img" and url.startswith("data:image/png;base64,")) or (tag == "a" and url.startswith("#")), url
    text = quickstart_report.read_text()
    assert "Content-Security-Policy" in text and "default-src 'none'" in html.unescape(text)
    assert not re.search(r"https?://", text.split("</style>")[0].split("<style>")[1])  # no @import, no fonts


def test_report_holds_what_the_studies_write_up(quickstart_report):
    text = quickstart_report.read_text()
    for fact in ("Split sizes", "train 1,197, validation 300, test 300", "Machine", "Device", "Versions", "torch",
                 "Wall time", "Spec, verbatim", "name: quickstart", "# The quickstart"):
        assert fact in text, fact
    for column in ("params", "train time s", "best epoch", "train acc %", "val acc %", "test acc %", "train loss",
                   "val loss", "test loss", "gap pts"):
        assert f">{column}</th>" in text, column
    for configuration in ("small/none", "small/batchnorm", "deeper/l2", "deeper/dropout"):
        assert f"<summary>{configuration}: " in text  # a collapsible Keras-style summary each
    assert "Total params: 38,730" in text and "Non-trainable params: 224" in text
    assert "Per-class precision, recall" in text and "Correctly and incorrectly classified test images" in text
    assert text.count("Confusion matrix on the") == 1  # one matrix, with its scores beside it


def test_markdown_report_links_figures_that_exist_and_lists_every_configuration(quickstart_store):
    path = write_report(quickstart_store, format="md")
    assert path == quickstart_store / "report.md"
    text = path.read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) >= 6
    for link in links:
        assert link.startswith("report_figures/") and (path.parent / link).stat().st_size > 1000
    assert {p.name for p in figures_folder(path).iterdir()} == {Path(link).name for link in links}
    for heading in ("## Study", "## Results", "## Learning curves", "## Model summaries", "## Best configuration"):
        assert heading in text
    table = [line for line in text.splitlines() if line.startswith("| ")]
    for architecture, variant in (("small", "none"), ("small", "batchnorm"), ("deeper", "l2"), ("deeper", "dropout")):
        assert any(f"| {architecture} | {variant} |" in line for line in table)
    assert "|---:|" in text  # numbers right-aligned
    assert "```yaml\n# The quickstart" in text


def test_markdown_rebuild_drops_figures_it_no_longer_has(quickstart_document, tmp_path):
    data, sections = quickstart_document
    output = tmp_path / "notes.md"
    write_markdown(output, data, sections)
    stale = figures_folder(output) / "99-old-figure.png"
    stale.write_bytes(b"old")
    mine = figures_folder(output) / "keep-me.txt"
    mine.write_text("the user's own file")
    write_markdown(output, data, sections)
    assert not stale.exists() and mine.exists()
    assert figures_folder(output).name == "notes_figures"


def test_hostile_names_are_escaped_in_html_and_markdown(xss_report):
    text = xss_report.read_text()
    assert XSS_NAME not in text and XSS_ARCHITECTURE not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=alert(2)&gt;" in text
    markdown = write_report(xss_report.parent, format="md").read_text()
    outside_code = re.sub(r"```.*?```", "", markdown, flags=re.S)
    assert "<script>" not in outside_code and "<img" not in outside_code


def test_a_study_whose_runs_all_failed_says_why_each_section_is_missing(failed_store):
    path = write_report(failed_store)
    page = outline(path)
    # The header, the table with the failures, and the model (it builds; its runs failed in training).
    assert page.sections == ["study", "results", "models"]
    assert page.omitted == ["findings", "comparisons", "curves", "kfold", "best", "explain"]
    text = path.read_text()
    for line in re.findall(r'<p class="omitted"[^>]*>(.*?)</p>', text, flags=re.S):
        assert "\n" not in line.strip() and "left out: " in line and len(line) < 300
    assert "<figure" not in text and "<img" not in text
    assert "Runs that did not finish" in text and "failed" in text


def test_without_a_test_split_the_report_uses_validation_and_shows_no_test_columns(validation_sweep_store):
    path = write_report(validation_sweep_store)
    text = path.read_text()
    assert outline(path).sections == list(SECTIONS)
    assert "test acc %" not in text and "test loss" not in text
    assert "Confusion matrix on the validation split" in text
    assert "accuracy) and F1 on the validation split" in text  # the per-class table's caption
    # The examples come from validation too, or are left out with their reason (never test images).
    assert "classified test images" not in text
    assert ("classified validation images" in text
            or "No example images: the run kept example images of the test split only" in text)
    # A sweep also gets the best-to-worst table with its differences from the best.
    assert 'id="sweep-table"' in text and ">Δ val pts</th>" in text and ">conv.kernel</th>" in text
    assert re.search(r'<td class="num" data-sort="0.0">\+0.00</td>', text)


def test_report_is_written_atomically_and_where_asked(quickstart_store, tmp_path, capsys):
    output = tmp_path / "deep" / "my report.html"
    assert write_and_announce(quickstart_store, output, None, "html") == output
    assert str(output) in capsys.readouterr().out
    assert output.read_text().rstrip().endswith("</html>")
    assert not [p for p in output.parent.iterdir() if p.name.startswith(TEMP_PREFIX)]
    assert not list(quickstart_store.rglob(TEMP_PREFIX + "*"))


def test_bad_requests_are_reported_as_errors(quickstart_store, tmp_path):
    with pytest.raises(ReportError, match="unknown report format 'pdf'"):
        write_report(quickstart_store, format="pdf")
    with pytest.raises(ReportError, match="is a folder"):
        write_report(quickstart_store, tmp_path)
    from cnnlab.errors import StoreError

    with pytest.raises(StoreError, match="no cnnlab store"):
        write_report(tmp_path / "nothing-here")
    with pytest.raises(StoreError, match="no study named"):
        write_report(quickstart_store, study="other")


def test_a_registered_section_appears_in_order_in_both_formats(quickstart_document, tmp_path):
    from cnnlab.report import document

    @section(order=22)
    def extra(data):
        return Section.absent("extra", "Extra", "nothing to add for this study.")

    try:
        builders = section_builders()
        names = [builder.__name__ for builder in builders]
        assert names.index("extra") == names.index("results") + 1
        data, sections = quickstart_document
        sections = [*sections[:3], extra(data), *sections[3:]]  # as build_sections orders them
        write_html(tmp_path / "r.html", data, sections)
        html = (tmp_path / "r.html").read_text()
        assert html.index('id="results"') < html.index('id="extra"') < html.index('id="curves"')
        write_markdown(tmp_path / "r.md", data, sections)
        markdown = (tmp_path / "r.md").read_text()
        assert "> **Extra** left out: nothing to add for this study." in markdown
    finally:
        document._BUILDERS[:] = [entry for entry in document._BUILDERS if entry[2] is not extra]
    assert "extra" not in [builder.__name__ for builder in section_builders()]


def test_a_folder_with_two_studies_gets_one_report_each_and_uses_the_final_retrain(tmp_path, tiny_study):
    from cnnlab.api import run_study
    from cnnlab.errors import StoreError

    tiny_study["train"]["epochs"] = 1
    retrained = dict(tiny_study, name="Retrained A", evaluate={"retrain_on": "train+val"})
    assert run_study(retrained, tmp_path).outcome.ok
    assert run_study(dict(tiny_study, name="plain"), tmp_path).outcome.ok
    with pytest.raises(StoreError, match="2 studies"):
        write_report(tmp_path)
    path = write_report(tmp_path, study="Retrained A")
    assert path == tmp_path / "report-retrained-a.html"
    text = path.read_text()
    assert "dropout (final retrain)" in text or "none (final retrain)" in text
    assert "come from its final retrain on train+val, run " in text
    assert "Confusion matrix on the test split" in text  # the retrain measured test; the selection runs did not
    assert write_report(tmp_path, study="plain") == tmp_path / "report-plain.html"
