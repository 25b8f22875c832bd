"""The report as a reader meets it: opened from disk in headless Chromium, offline.

A full-page screenshot of the quickstart report is written to test-artifacts/ for people to
look at; nothing compares it.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from tests.report.conftest import ARTIFACTS, XSS_ARCHITECTURE, XSS_NAME

SECTION_HEADINGS = {"study": "Study", "findings": "Findings", "results": "Results", "comparisons": "Comparisons",
                    "curves": "Learning curves", "models": "Model summaries", "best": "Best configuration",
                    "explain": "What the network learned"}


@dataclass
class Visit:
    page: Any
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@contextmanager
def visit(browser, report: Path, **options) -> Iterator[Visit]:
    """Open the report in a fresh context, recording console errors, requests and dialogs."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, **options)
    try:
        page = context.new_page()
        seen = Visit(page)
        page.on("console", lambda message: seen.errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: seen.errors.append(str(error)))
        page.on("request", lambda request: seen.requests.append(request.url))

        def dialog(opened) -> None:
            seen.dialogs.append(opened.message)
            opened.dismiss()

        page.on("dialog", dialog)
        page.goto(report.as_uri(), wait_until="load")
        yield seen
    finally:
        context.close()


def _column(page, header: str) -> list[str]:
    headers = page.locator("#results-table thead th").all_inner_texts()
    index = [text.strip() for text in headers].index(header)
    return page.eval_on_selector_all("#results-table tbody tr",
                                     f"rows => rows.map(row => row.cells[{index}].getAttribute('data-sort') "
                                     f"?? row.cells[{index}].textContent.trim())")


def _click(page, header: str) -> None:
    headers = [text.strip() for text in page.locator("#results-table thead th").all_inner_texts()]
    page.locator("#results-table thead th").nth(headers.index(header)).click()


def test_quickstart_report_loads_offline_with_every_section_visible(browser, quickstart_report):
    with visit(browser, quickstart_report) as seen:
        page = seen.page
        for anchor, title in SECTION_HEADINGS.items():
            heading = page.locator(f"section#{anchor} > h2")
            assert heading.is_visible(), f"section {anchor} is not visible"
            assert heading.inner_text() == title
        assert page.locator("#results-table tbody tr").count() == 8
        images = page.locator("figure img")
        assert images.count() >= 6
        assert all(page.eval_on_selector_all("figure img", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)"))
        ARTIFACTS.mkdir(exist_ok=True)
        screenshot = ARTIFACTS / "report-quickstart.png"
        page.screenshot(path=str(screenshot), full_page=True)
        print(f"\nscreenshot of the quickstart report: {screenshot}")
    assert seen.errors == []
    assert all(url == quickstart_report.as_uri() or url.startswith("data:") for url in seen.requests), seen.requests
    assert screenshot.stat().st_size > 10_000


def test_results_table_sorts_by_the_clicked_column(browser, quickstart_report):
    with visit(browser, quickstart_report) as seen:
        page = seen.page
        validation = [float(v) for v in _column(page, "val acc %")]
        assert validation == sorted(validation, reverse=True)  # as written: best on validation first
        _click(page, "params")
        ascending = [float(v) for v in _column(page, "params")]
        assert ascending == sorted(ascending) and len(set(ascending)) > 1
        assert page.locator("#results-table thead th[aria-sort=ascending]").inner_text().strip() == "params"
        _click(page, "params")
        assert [float(v) for v in _column(page, "params")] == sorted(ascending, reverse=True)
        _click(page, "architecture")
        names = _column(page, "architecture")
        assert names == sorted(names) and names != sorted(names, reverse=True)
        # The rank column keeps telling the validation order whatever the sort.
        _click(page, "#")
        assert [int(v) for v in _column(page, "#")] == list(range(1, 9))
    assert seen.errors == []


def test_results_table_reads_with_javascript_off(browser, quickstart_report):
    with visit(browser, quickstart_report, java_script_enabled=False) as seen:
        page = seen.page
        rows = page.locator("#results-table tbody tr")
        assert rows.count() == 8 and rows.first.is_visible()
        # A mean with its interval now that the quickstart has 3 seeds.
        assert re.fullmatch(r"\d+\.\d\d ± \d+\.\d\d", page.locator("#results-table tbody tr td.num").nth(6).inner_text().strip())
        for anchor in SECTION_HEADINGS:
            assert page.locator(f"section#{anchor} > h2").is_visible()
    assert seen.errors == []


def test_printing_shows_the_collapsed_spec_and_summaries(browser, quickstart_report, tmp_path):
    with visit(browser, quickstart_report) as seen:
        page = seen.page
        assert not page.locator("#study details pre").is_visible()
        page.emulate_media(media="print")
        assert page.locator("#study details pre").is_visible()
        assert page.locator("#models details pre").first.is_visible()
        assert not page.locator("nav").is_visible()
        pdf = page.pdf(format="A4")
        assert pdf.startswith(b"%PDF")


def test_hostile_names_show_as_text_and_run_nothing(browser, xss_report):
    with visit(browser, xss_report) as seen:
        page = seen.page
        assert page.locator("h1").inner_text() == XSS_NAME
        assert page.title().startswith(XSS_NAME)
        assert XSS_ARCHITECTURE in page.locator("#results-table").inner_text()
        assert page.locator("img[src=x]").count() == 0
        page.wait_for_timeout(300)  # an onerror handler would have fired by now
    assert seen.dialogs == []
    assert seen.errors == []
    assert all(url == xss_report.as_uri() or url.startswith("data:") for url in seen.requests), seen.requests
