"""Every explain figure of one finished run, from the study's ``explain:`` section and overrides.

``explain_figures`` returns them in memory (the report embeds them), ``explain_run`` writes
them as PNG (or SVG, PDF) files (the CLI). What is drawn, and from which layers and input:

- ``filters``: the layers of ``layers`` that are conv layers, else the spec's ``filters``, else the
  first conv layer; with two or more layers also "the last 8 filters of X vs Y".
- ``maps``: ``layers`` (``all``: every layer), else the spec's ``feature_maps.layers``, else every
  conv layer; for ``image``/``index``, else the spec's ``feature_maps.image`` (split:index, a file
  or ``sample:china``/``sample:flower``), else test:0 (val:0 without a test split); plus the input
  figure (original, model input, normalized).
- ``hist``: this run's weight and bias histograms, and, when the study has other variants of
  the same architecture (same sweep point, repeat, fold and phase), their overlay.
- ``saliency`` / ``guided``: for the input above, each class of the spec's ``saliency`` list (else
  the 3 most probable classes); plus, per neuron layer, the same method for one unit of each
  chosen channel on its top images (matching the patches figure).
- ``patches``: per neuron layer, the top-k patches of the chosen channels, and every channel grouped
  by the class most of its top-k images carry, one row per class (``byclass``).
- ``examples``: the run's stored correct / wrong / most confidently wrong images.
- ``confusion``: the run's confusion matrix (test split, else validation) from its stored
  predictions, each class's precision, recall and F1 beside it, top-5 past 10 classes.

Layers are picked by name, by 1-based position in the run's model, or per architecture (``picks``:
one resolver for ``layers`` and every spec setting). A pick the run's model cannot honour is a note
in the caption of the first figure of its kind (maps: the input figure, drawn even when no layer
is left; filters: the first filters figure), and an error only when nothing is left to draw.
Neuron layers and channels (patches, guided, saliency): see ``neurons``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import torch

from cnnlab.errors import CnnlabError, DataError, ModelError, SpecError
from cnnlab.explain import attribution, charts, draw
from cnnlab.explain.activations import feature_maps
from cnnlab.explain.confusion import confusion_figure, run_confusion
from cnnlab.explain.context import FigureContext
from cnnlab.explain.images import is_sample
from cnnlab.explain.neurons import patches, unit_figures
from cnnlab.explain.picks import LayerPickError, resolve_layer, resolve_layers
from cnnlab.explain.runs import ExplainedRun, load_run
from cnnlab.explain.weights import filters, weight_histograms
from cnnlab.figures import Figure, colour_for
from cnnlab.figures.vector import keeping
from cnnlab.fsutil import write_bytes_atomic
from cnnlab.registry import did_you_mean
from cnnlab.store import Store

WHAT = ("filters", "maps", "hist", "saliency", "guided", "patches", "examples", "confusion")
DEFAULT_WHAT = ("filters", "maps", "hist", "examples")
COMPARE_LAST = 8  # "the last N filters of layer X vs layer Y"


def parse_what(what: Optional[str | Sequence[str]]) -> Optional[list[str]]:
    """``"filters,maps"`` or a list -> checked names; None stays None (the spec decides)."""
    if what is None:
        return None
    items = what.split(",") if isinstance(what, str) else list(what)
    items = [item.strip() for item in items if item.strip()]
    for item in items:
        if item not in WHAT:
            raise SpecError(f"unknown explain figure '{item}'{did_you_mean(item, WHAT)}; known: {', '.join(WHAT)}")
    return list(dict.fromkeys(items))


def spec_what(run: ExplainedRun) -> list[str]:
    """What the study's ``explain:`` section asks for; the defaults when it asks for nothing."""
    spec = run.explain
    asked = [name for name, on in (
        ("filters", spec.filters is not None), ("maps", spec.feature_maps is not None), ("hist", spec.histograms),
        ("saliency", spec.saliency is not None), ("guided", spec.guided_backprop is not None),
        ("patches", spec.top_patches is not None), ("examples", spec.examples is not None),
        ("confusion", spec.confusion is not None)) if on]
    return asked or list(DEFAULT_WHAT)


def iter_figures(run: ExplainedRun, *, what: Optional[str | Sequence[str]] = None,
                 layers: Optional[Sequence[str | int]] = None, image: Optional[str | Path] = None,
                 index: Optional[str] = None, store: Optional[Store] = None,
                 on_error: Optional[Callable[[str, CnnlabError], None]] = None) -> Iterator[Figure]:
    """Yield the run's explain figures one by one (see the module doc for what and where from).

    ``layers`` are names or 1-based positions in the run's model ("3" too; -1 the last); one that
    the model lacks is an error before any work, as with the command line's ``--layers``.

    With ``on_error``, a figure that cannot be made (a dataset not available, a layer without
    the needed output) is reported to it and skipped; without, the error is raised.
    """
    chosen = parse_what(what) or spec_what(run)
    names = [str(name) for name in layers] if layers else None
    if names and names != ["all"]:
        names = list(dict.fromkeys(resolve_layer(run, pick, "layers") for pick in layers))
        for name in names:
            run.built.info(name)  # did-you-mean before any work
    source = image if image is None or is_sample(image) else Path(image)
    context = FigureContext(run, names, source, index)
    makers = {"filters": _filters, "maps": _maps, "hist": _histograms, "saliency": _saliency,
              "guided": _guided, "patches": patches, "examples": _examples, "confusion": _confusion}
    for item in chosen:
        try:
            yield from makers[item](context, store)
        except CnnlabError as error:
            if on_error is None:
                raise
            on_error(item, error)


def explain_figures(store: Store | str | Path, run_id: str, *, what: Optional[str | Sequence[str]] = None,
                    layers: Optional[Sequence[str | int]] = None, image: Optional[str | Path] = None,
                    index: Optional[str] = None, data_dir: Optional[str | Path] = None,
                    on_error: Optional[Callable[[str, CnnlabError], None]] = None,
                    device: Optional[str] = None) -> list[Figure]:
    """The run's explain figures in memory (PNG bytes, title, caption), e.g. for the report.

    ``store`` is an open ``Store`` or an output folder (opened and closed here); ``device``
    (e.g. "cuda") is where the model runs, the CPU by default.
    """
    with _opened(store) as opened:
        run = load_run(opened, run_id, data_dir, device)
        return list(iter_figures(run, what=what, layers=layers, image=image, index=index, store=opened,
                                 on_error=on_error))


@contextlib.contextmanager
def _opened(store: Store | str | Path) -> Iterator[Store]:
    if isinstance(store, Store):
        yield store
        return
    with Store(store, create=False) as opened:
        yield opened


def default_folder(store: Store, run_id: str) -> Path:
    """``DIR/explain/<run id>``; the id is checked first (it came from the database)."""
    store.run_folder(run_id)  # a StoreError for anything but a run id
    return store.folder / "explain" / run_id


def explain_run(store: Store | str | Path, run_id: str, *, what: Optional[str | Sequence[str]] = None,
                layers: Optional[Sequence[str | int]] = None, image: Optional[str | Path] = None,
                index: Optional[str] = None, out_folder: Optional[str | Path] = None,
                data_dir: Optional[str | Path] = None, on_written: Optional[Callable[[Path], None]] = None,
                on_error: Optional[Callable[[str, CnnlabError], None]] = None,
                device: Optional[str] = None, figures: str = "png") -> list[Path]:
    """Write the run's explain figures as files (atomically) and return their paths.

    ``out_folder`` defaults to ``<store>/explain/<run id>/``; ``on_written`` is called with each
    path as soon as it is written. ``store`` is an open ``Store`` or an output folder.
    ``figures`` is png, svg or pdf: the file format (``figures.vector``).
    """
    with _opened(store) as opened, keeping(figures) as vectors:
        run = load_run(opened, run_id, data_dir, device)
        folder = Path(out_folder) if out_folder is not None else default_folder(opened, run.run_id)
        paths = []
        for figure in iter_figures(run, what=what, layers=layers, image=image, index=index, store=opened,
                                   on_error=on_error):
            extension, data = vectors.file(figure.png_bytes)
            path = folder / f"{figure.name}.{extension}"
            write_bytes_atomic(path, data)
            paths.append(path)
            if on_written is not None:
                on_written(path)
        return paths


# ---------------------------------------------------------------- one maker per figure kind


def _filters(context: FigureContext, store: Optional[Store]) -> Iterator[Figure]:
    run, notes = context.run, []
    convs = context.conv_layers()
    if not convs:
        raise ModelError("the model has no conv layer, so it has no filters to draw")
    if context.layers and context.layers != ["all"]:
        names = [name for name in context.layers if name in convs]
        if not names:
            raise ModelError(f"none of the layers {context.layers} is a conv layer; conv layers: {', '.join(convs)}")
    elif context.layers == ["all"]:
        names = convs
    elif run.explain.filters:
        names, notes = resolve_layers(run, run.explain.filters, "explain.filters", "conv")
        if not names:
            raise LayerPickError(". ".join(notes))
    else:
        names = [convs[0]]
    kernels = {}
    for name in names:
        kernels[name] = filters(run.model, name)
        yield draw.draw_filters(kernels[name], name, note=". ".join(notes) if name == names[0] else "")
    if len(kernels) > 1:
        yield draw.draw_filter_comparison(kernels, last=COMPARE_LAST)


def _maps(context: FigureContext, store: Optional[Store]) -> Iterator[Figure]:
    run, notes = context.run, []
    item, x = context.input()
    if context.layers == ["all"]:
        names = run.built.names
    elif context.layers:
        names = context.layers
    elif run.explain.feature_maps is not None and run.explain.feature_maps.layers:
        # Layers that do not fit this run's model are a note under the input, which is drawn anyway.
        names, notes = resolve_layers(run, run.explain.feature_maps.layers, "explain.feature_maps.layers")
    else:
        names = context.conv_layers()
    for name in names:
        run.built.info(name)
    probabilities = run.probabilities(x)[0]
    top = torch.argsort(probabilities, descending=True, stable=True)[:3]
    prediction = [(run.class_names[int(c)], float(probabilities[c])) for c in top]
    yield draw.draw_input(item, x, run.config.dataset.normalize, prediction, run.class_names, note=". ".join(notes))
    outputs = feature_maps(run.model, x, names)
    for name in names:
        activation = outputs[name][0]
        if activation.dim() == 3:
            yield draw.draw_feature_maps(activation, name, item.name)
        else:
            classes = run.class_names if name == run.built.classifier.name else None
            yield charts.draw_units(activation, name, item.name, unit_names=classes)


def _histograms(context: FigureContext, store: Optional[Store]) -> Iterator[Figure]:
    run, config = context.run, context.run.config
    # The spec's order sets each variant's colour, as in the report's curves.
    order = list((store.study(config.study).setting("variants", default={}) if store else None) or [config.variant])
    yield charts.draw_histograms(weight_histograms(run.model), run.label, colour=colour_for(config.variant, order))
    if store is None:
        return
    siblings: dict[str, list] = {}
    for record in store.runs(config.study, status="done"):
        same = (record.architecture == config.architecture and (record.sweep or {}) == config.sweep
                and record.repeat == config.repeat and record.fold == config.fold and record.phase == config.phase)
        if same and record.variant not in siblings:
            weights = run.model.state_dict() if record.id == run.run_id else store.load_weights(record.id)
            siblings[record.variant] = weight_histograms(weights)
    if len(siblings) > 1:
        label = " ".join([config.architecture, *(f"{k}={v}" for k, v in config.sweep.items())])
        yield charts.draw_histogram_overlay(siblings, label, order=order)


def _classes(context: FigureContext, x: torch.Tensor) -> list[int]:
    run = context.run
    count = len(run.class_names)
    if run.explain.saliency:
        bad = [c for c in run.explain.saliency if not 0 <= c < count]
        if bad:
            raise ModelError(f"explain.saliency names classes {bad}; the run has classes 0 to {count - 1}")
        return list(run.explain.saliency)
    probabilities = run.probabilities(x)[0]
    return [int(c) for c in torch.argsort(probabilities, descending=True, stable=True)[:min(3, count)]]


def _class_figure(context: FigureContext, method: str) -> Figure:
    run = context.run
    item, x = context.input()
    classes = _classes(context, x)
    probabilities = run.probabilities(x)[0]
    batch = x.expand(len(classes), *x.shape[1:])
    function = attribution.saliency if method == "saliency" else attribution.guided_backprop
    maps = function(run.model, batch, torch.tensor(classes)).numpy()
    labels = [(run.class_names[c], float(probabilities[c])) for c in classes]
    true = run.class_names[item.label] if item.label is not None else None
    return draw.draw_class_attributions(item.image, item.name, labels, list(maps), method, true_label=true)


def _saliency(context: FigureContext, store: Optional[Store]) -> Iterator[Figure]:
    yield _class_figure(context, "saliency")
    yield from unit_figures(context, "saliency")


def _guided(context: FigureContext, store: Optional[Store]) -> Iterator[Figure]:
    yield _class_figure(context, "guided")
    yield from unit_figures(context, "guided")


def _examples(context: FigureContext, store: Optional[Store]) -> Iterator[Figure]:
    run = context.run
    if store is None:
        raise DataError("examples are read from the run store; none was given")
    found = store.load_examples(run.run_id)  # a damaged or changed file: a StoreError naming it
    if found is None:
        raise DataError(f"run {run.run_id} has no stored examples (runs store them when they finish)")
    examples = found.arrays()
    spec = run.explain.examples
    correct, wrong = (spec.correct, spec.wrong) if spec is not None else (5, 5)
    yield draw.examples_figure(examples, run.class_names, {"correct": correct, "wrong": wrong, "confident_wrong": wrong})


def _confusion(context: FigureContext, store: Optional[Store]) -> Iterator[Figure]:
    run = context.run
    if store is None:
        raise DataError("the confusion matrix is read from the run store; none was given")
    found = store.load_predictions(run.run_id)  # a damaged or changed file: a StoreError naming it
    yield confusion_figure(run_confusion(found, run.class_names, f"{run.label}, run {run.run_id}"))
