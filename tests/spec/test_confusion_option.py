"""The spec's ``explain.confusion``: what the report and explain draw of the confusion matrix,
checked like every field (file:line errors), and read by explain's default figure list."""

from __future__ import annotations

import pytest

from cnnlab.errors import SpecError
from cnnlab.explain.figures import WHAT, parse_what, spec_what
from cnnlab.spec.loader import load_study
from cnnlab.spec.evaluate import Explain
from tests.spec.test_malformed_specs import GOOD


@pytest.mark.parametrize("value, fragments", [
    ("[best, basline]", ["explain.confusion[1]", "'best' or 'baseline'", "'basline'"]),
    ("[best, best]", ["explain.confusion", "at most once"]),
    ("[]", ["explain.confusion", "at least 1"]),
    ("yes", ["explain.confusion", "list"]),
])
def test_a_bad_confusion_option_names_the_file_line_and_field(tmp_path, value, fragments):
    path = tmp_path / "study.yaml"
    path.write_text(GOOD + f"explain:\n  confusion: {value}\n")
    with pytest.raises(SpecError) as caught:
        load_study(path)
    message = str(caught.value)
    assert f"{path}:11:" in message, message
    for fragment in fragments:
        assert fragment in message, message


def test_the_option_asks_explain_for_the_confusion_figure(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(GOOD + "explain:\n  confusion: [best, baseline]\n")
    assert load_study(path)[0].explain.confusion == ["best", "baseline"]
    assert Explain().confusion is None and "confusion" in WHAT and parse_what("confusion,maps") == ["confusion", "maps"]

    class Run:
        explain = Explain(confusion=["best"])

    assert spec_what(Run()) == ["confusion"]
    Run.explain = Explain()
    assert "confusion" not in spec_what(Run())
