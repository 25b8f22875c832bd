"""Report fixtures: studies trained once per test package (quickstart, XSS, failed, validation-only
sweep), their reports, and headless Chromium (Debian's package) driven by Playwright."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

from cnnlab.api import open_store, run_study
from cnnlab.report import write_report
from cnnlab.report.data import gather
from cnnlab.report.document import build_sections
from tests.conftest import EXAMPLES, ROOT, TINY_STUDY

CHROMIUM = Path(os.environ.get("CNNLAB_CHROMIUM", "/usr/bin/chromium"))
# Headless, and nothing that phones home: the report must load with no network at all.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts"  # screenshots for people to look at (not compared)
XSS_NAME = "<script>alert(1)</script>"
XSS_ARCHITECTURE = "<img src=x onerror=alert(2)>"


def _train(study, out: Path, **options) -> Path:
    result = run_study(study, out, **options)
    with open_store(out) as store:
        errors = {run["error"] for run in store.runs() if run["status"] != "done"}
    assert result.outcome.ok, f"the study did not train ({result.outcome.describe()}): {errors}"
    return out


@pytest.fixture(scope="package")
def quickstart_store(tmp_path_factory) -> Path:
    """The quickstart (8 runs on 8x8 digits), 3 epochs instead of 15 to keep the tests quick."""
    out = _train(EXAMPLES / "quickstart.yaml", tmp_path_factory.mktemp("quickstart"), epochs=3)
    write_report(out)
    return out


@pytest.fixture(scope="package")
def quickstart_report(quickstart_store) -> Path:
    return quickstart_store / "report.html"


@pytest.fixture(scope="package")
def quickstart_document(quickstart_store):
    """The quickstart's gathered data and built sections, for tests that only render."""
    with open_store(quickstart_store) as store:
        data = gather(store)
    return data, build_sections(data)


@pytest.fixture(scope="package")
def xss_report(tmp_path_factory) -> Path:
    study = copy.deepcopy(TINY_STUDY)
    study["name"] = XSS_NAME
    study["architectures"] = {XSS_ARCHITECTURE: study["architectures"]["small"]}
    study["train"]["epochs"] = 2
    out = _train(study, tmp_path_factory.mktemp("xss"))
    return write_report(out)


@pytest.fixture(scope="package")
def failed_store(tmp_path_factory) -> Path:
    """Every run fails inside training (a model the pre-flight refuses never gets a run)."""
    from unittest import mock

    from cnnlab.train import Trainer

    study = copy.deepcopy(TINY_STUDY)
    study["name"] = "all-failed"
    study["architectures"] = {"breaks": [{"conv": {"filters": 4, "kernel": 3}}, "maxpool", "flatten", {"dense": 10}]}
    out = tmp_path_factory.mktemp("failed")
    with mock.patch.object(Trainer, "fit", side_effect=RuntimeError("out of memory in the first step")):
        result = run_study(study, out)
    assert result.outcome.statuses == {"failed": 2}
    return out


@pytest.fixture(scope="package")
def validation_sweep_store(tmp_path_factory) -> Path:
    """A 4-run kernel sweep that never measures the test split."""
    study = copy.deepcopy(TINY_STUDY)
    study["name"] = "val-only-sweep"
    study["sweep"] = {"conv.kernel": [3, 5]}
    study["evaluate"] = {"test": False}
    study["train"]["epochs"] = 2
    return _train(study, tmp_path_factory.mktemp("sweep"))


@pytest.fixture(scope="package")
def browser():
    """Debian's chromium, headless, each launch with a fresh temporary profile."""
    reason = f"{CHROMIUM} is missing; install it with: apt-get install -y chromium"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "playwright is missing; install it with: pip install playwright"
        sync_playwright = None
    if sync_playwright is None or not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()
