"""The report's section on what the best configuration learned: the explain figures the spec asks
for (filters, feature maps, histograms, patches, attributions), made from its stored weights."""

from __future__ import annotations

from cnnlab.errors import CnnlabError
from cnnlab.report.data import ReportData
from cnnlab.report.document import Block, Figure, Note, Paragraph, Section, section, slug

# The spec's explain: keys and the figure kinds they ask for. Examples are already in the
# best-configuration section, so they are not repeated here.
SPEC_TO_WHAT = {"filters": "filters", "feature_maps": "maps", "histograms": "hist", "top_patches": "patches",
                "guided_backprop": "guided", "saliency": "saliency"}
DEFAULT_WHAT = ["filters", "maps", "hist"]


def _what(spec: dict) -> list[str]:
    explain = spec.get("explain") or {}
    asked = [what for key, what in SPEC_TO_WHAT.items() if explain.get(key)]
    return asked or DEFAULT_WHAT


@section(order=55)
def what_it_learned(data: ReportData) -> Section:
    title = "What the network learned"
    evaluation = data.evaluation
    if evaluation is None:
        return Section.absent("explain", title, "there is no finished configuration to explain.")
    from cnnlab.explain import explain_figures

    skipped: list[str] = []
    try:
        made = explain_figures(data.folder, evaluation.run_id, what=_what(data.spec), data_dir=data.data_dir,
                               on_error=lambda what, error: skipped.append(f"{what}: {error}"))
    except CnnlabError as error:
        return Section.absent("explain", title, f"the figures could not be made ({error}).")
    blocks: list[Block] = [Paragraph(f"Figures of {evaluation.configuration}, run {evaluation.run_id}, from its stored "
                                     "weights (cnnlab explain makes the same ones as PNG files).")]
    for figure in made:
        blocks.append(Figure(f"explain-{slug(figure.name)}", figure.png_bytes, figure.title, figure.caption, scale=1.0))
    blocks += [Note(f"Left out: {reason}") for reason in skipped]
    if not made:
        return Section.absent("explain", title, "no figure could be made: " + "; ".join(skipped))
    return Section("explain", title, blocks)
