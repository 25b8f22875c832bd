"""Every explain figure of one finished run, from the study's ``explain:`` section and overrides.

``explain_figures`` returns them in memory (the report embeds them), ``explain_run`` writes
them as PNG (or SVG, PDF) files (the CLI). What is drawn, and from which layers and input:

- ``filters``: the layers of ``layers`` that are conv layers, else the spec's ``filters``, else the
  first conv layer; with two or more layers also "the last 8 filters of X vs Y".
- ``maps``: ``layers`` (``all``: every layer), else the spec's ``feature_maps.layers``, else every
  conv layer; for ``image``/``index``, else the spec's ``feature_maps.image``, else test:0
  (val:0 without a test split); plus the input figure (original, model input, normalized).
- ``hist``: this run's weight and bias histograms, and, when the study has other variants of
  the same architecture (same sweep point, repeat, fold and phase), their overlay.
- ``saliency`` / ``guided``: for the input above, each class of the spec's ``saliency`` list (else
  the 3 most probable classes); plus, per neuron layer, the same method for one unit of each
  chosen channel on its top images (matching the patches figure).
- ``patches``: per neuron layer, the top-k patches of the chosen channels.
- ``examples``: the run's stored correct / wrong / most confidently wrong images.
- ``confusion``: the run's confusion matrix (test split, else validation) from its stored
  predictions, each class's precision, recall and F1 beside it, top-5 past 10 classes.

Neuron layers are the spatial layers in ``layers``, else the spec's ``guided_backprop.layer``
(saliency, guided) or ``top_patches.layer`` (patches), else the last conv layer (``layers=["all"]``
counts for filters and maps only). The chosen channels are the ``neurons`` (default 10) whose
best activation over the split (default test) is highest, strongest first, each with its top
``k`` (default 9) images; one streaming pass per layer and setting serves patches, guided and saliency.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import torch

from cnnlab.errors import CnnlabError, DataError, ModelError, SpecError
from cnnlab.explain import attribution, charts, draw
from cnnlab.explain.activations import TopActivations, feature_maps, top_activations
from cnnlab.explain.confusion import confusion_figure, run_confusion
from cnnlab.explain.images import InputImage, looks_like_index
from cnnlab.explain.receptive import crop, receptive_field
from cnnlab.explain.runs import ExplainedRun, load_run
from cnnlab.explain.weights import filters, weight_histograms
from cnnlab.figures import Figure, colour_for
from cnnlab.figures.vector import keeping
from cnnlab.fsutil import write_bytes_atomic
from cnnlab.registry import did_you_mean
from cnnlab.spec.study import Neurons
from cnnlab.store import Store

WHAT = ("filters", "maps", "hist", "saliency", "guided", "patches", "examples", "confusion")
DEFAULT_WHAT = ("filters", "maps", "hist", "examples")
COMPARE_LAST = 8  # "the last N filters of layer X vs layer Y"
SCAN_BATCH = 256


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


@dataclass
class _Context:
    """One call's run, choices and caches (the input, its tensor, the split scans)."""

    run: ExplainedRun
    layers: Optional[list[str]]
    image: Optional[Path]
    index: Optional[str]
    _input: Optional[tuple[InputImage, torch.Tensor]] = None
    _scans: dict = field(default_factory=dict)

    def input(self) -> tuple[InputImage, torch.Tensor]:
        if self._input is None:
            image, index = self.image, self.index
            if image is None and index is None and self.run.explain.feature_maps is not None:
                spec_image = self.run.explain.feature_maps.image
                if looks_like_index(spec_image):
                    index = spec_image
                else:  # a file: as written, else beside the study file
                    image = Path(spec_image)
                    folder = self.run.spec_folder
                    if not image.is_absolute() and not image.exists() and folder is not None:
                        image = folder / image
            item = self.run.input(index=index, image=image)
            self._input = (item, self.run.model_input(item.image))
        return self._input

    def spatial_layers(self) -> list[str]:
        return [info.name for info in self.run.built.layers if len(info.output_shape) == 3]

    def conv_layers(self) -> list[str]:
        return [info.name for info in self.run.built.layers if info.kind == "conv"]


def iter_figures(run: ExplainedRun, *, what: Optional[str | Sequence[str]] = None,
                 layers: Optional[Sequence[str]] = None, image: Optional[str | Path] = None,
                 index: Optional[str] = None, store: Optional[Store] = None,
                 on_error: Optional[Callable[[str, CnnlabError], None]] = None) -> Iterator[Figure]:
    """Yield the run's explain figures one by one (see the module doc for what and where from).

    With ``on_error``, a figure that cannot be made (a dataset not available, a layer without
    the needed output) is reported to it and skipped; without, the error is raised.
    """
    chosen = parse_what(what) or spec_what(run)
    names = [str(name) for name in layers] if layers else None
    if names and names != ["all"]:
        for name in names:
            run.built.info(name)  # did-you-mean before any work
    context = _Context(run, names, Path(image) if image is not None else None, index)
    makers = {"filters": _filters, "maps": _maps, "hist": _histograms, "saliency": _saliency,
              "guided": _guided, "patches": _patches, "examples": _examples, "confusion": _confusion}
    for item in chosen:
        try:
            yield from makers[item](context, store)
        except CnnlabError as error:
            if on_error is None:
                raise
            on_error(item, error)


def explain_figures(store: Store | str | Path, run_id: str, *, what: Optional[str | Sequence[str]] = None,
                    layers: Optional[Sequence[str]] = None, image: Optional[str | Path] = None,
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
                layers: Optional[Sequence[str]] = None, image: Optional[str | Path] = None,
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


def _filters(context: _Context, store: Optional[Store]) -> Iterator[Figure]:
    run = context.run
    convs = context.conv_layers()
    if not convs:
        raise ModelError("the model has no conv layer, so it has no filters to draw")
    if context.layers and context.layers != ["all"]:
        names = [name for name in context.layers if name in convs]
        if not names:
            raise ModelError(f"none of the layers {context.layers} is a conv layer; conv layers: {', '.join(convs)}")
    elif context.layers == ["all"]:
        names = convs
    else:
        names = list(run.explain.filters or [convs[0]])
    kernels = {}
    for name in names:
        kernels[name] = filters(run.model, name)
        yield draw.draw_filters(kernels[name], name)
    if len(kernels) > 1:
        yield draw.draw_filter_comparison(kernels, last=COMPARE_LAST)


def _maps(context: _Context, store: Optional[Store]) -> Iterator[Figure]:
    run = context.run
    item, x = context.input()
    if context.layers == ["all"]:
        names = run.built.names
    elif context.layers:
        names = context.layers
    elif run.explain.feature_maps is not None and run.explain.feature_maps.layers:
        names = list(run.explain.feature_maps.layers)
    else:
        names = context.conv_layers()
    for name in names:
        run.built.info(name)
    probabilities = run.probabilities(x)[0]
    top = torch.argsort(probabilities, descending=True, stable=True)[:3]
    prediction = [(run.class_names[int(c)], float(probabilities[c])) for c in top]
    yield draw.draw_input(item, x, run.config.dataset.normalize, prediction, run.class_names)
    outputs = feature_maps(run.model, x, names)
    for name in names:
        activation = outputs[name][0]
        if activation.dim() == 3:
            yield draw.draw_feature_maps(activation, name, item.name)
        else:
            classes = run.class_names if name == run.built.classifier.name else None
            yield charts.draw_units(activation, name, item.name, unit_names=classes)


def _histograms(context: _Context, store: Optional[Store]) -> Iterator[Figure]:
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


def _classes(context: _Context, x: torch.Tensor) -> list[int]:
    run = context.run
    count = len(run.class_names)
    if run.explain.saliency:
        bad = [c for c in run.explain.saliency if not 0 <= c < count]
        if bad:
            raise ModelError(f"explain.saliency names classes {bad}; the run has classes 0 to {count - 1}")
        return list(run.explain.saliency)
    probabilities = run.probabilities(x)[0]
    return [int(c) for c in torch.argsort(probabilities, descending=True, stable=True)[:min(3, count)]]


def _class_figure(context: _Context, method: str) -> Figure:
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


def _saliency(context: _Context, store: Optional[Store]) -> Iterator[Figure]:
    yield _class_figure(context, "saliency")
    yield from _unit_figures(context, "saliency")


def _guided(context: _Context, store: Optional[Store]) -> Iterator[Figure]:
    yield _class_figure(context, "guided")
    yield from _unit_figures(context, "guided")


def _neuron_settings(context: _Context, purpose: str) -> list[Neurons]:
    run = context.run
    spatial = context.spatial_layers()
    spec = run.explain.top_patches if purpose == "patches" else run.explain.guided_backprop
    other = run.explain.guided_backprop if purpose == "patches" else run.explain.top_patches
    base = spec or other
    if context.layers and context.layers != ["all"]:
        names = [name for name in context.layers if name in spatial]
        if not names:
            raise ModelError(f"none of the layers {context.layers} has a spatial output (conv or pooling); "
                             f"those that do: {', '.join(spatial)}")
    elif base is not None:
        names = [base.layer]
    else:
        convs = context.conv_layers()
        if not convs:
            raise ModelError("the model has no conv layer to find top-activating neurons in")
        names = [convs[-1]]
    settings = base.model_dump() if base is not None else {}
    return [Neurons.model_validate({**settings, "layer": name}) for name in names]


def _scan(context: _Context, neurons: Neurons) -> TopActivations:
    """The chosen channels' top-k images of the split, from one streaming pass (cached per call)."""
    key = (neurons.layer, neurons.split, neurons.k, neurons.neurons)
    if key not in context._scans:
        run = context.run
        receptive_field(run.built.layers, neurons.layer)  # a clear error for a layer without one
        data = run.split_data(neurons.split)
        top = top_activations(run.model, data, run.normalizer(), neurons.layer, None, neurons.k, SCAN_BATCH)
        best = top.values[:, 0]
        order = torch.sort(best, descending=True, stable=True).indices[:neurons.neurons]
        context._scans[key] = TopActivations(
            layer=top.layer, channels=[top.channels[i] for i in order.tolist()], values=top.values[order],
            image_index=top.image_index[order], position=top.position[order])
    return context._scans[key]


def _patches(context: _Context, store: Optional[Store]) -> Iterator[Figure]:
    run = context.run
    for neurons in _neuron_settings(context, "patches"):
        top = _scan(context, neurons)
        field_ = receptive_field(run.built.layers, neurons.layer)
        images = run.split_data(neurons.split).images
        crops = [[crop(images[image].numpy(), field_, r, c) for _, image, r, c in top.rank(row)]
                 for row in range(len(top.channels))]
        yield draw.draw_patches(top, crops, field_, neurons.split)


def _unit_figures(context: _Context, method: str) -> Iterator[Figure]:
    run = context.run
    function = attribution.neuron_guided_backprop if method == "guided" else attribution.neuron_saliency
    for neurons in _neuron_settings(context, method):
        top = _scan(context, neurons)
        field_ = receptive_field(run.built.layers, neurons.layer)
        images = run.split_data(neurons.split).images
        crops = []
        for row, channel in enumerate(top.channels):
            x = run.model_input(images[top.image_index[row]])
            maps = function(run.model, x, neurons.layer, channel, top.position[row].tolist()).numpy()
            crops.append([crop(maps[i], field_, r, c) for i, (_, _, r, c) in enumerate(top.rank(row))])
        yield draw.draw_unit_attributions(top, crops, field_, neurons.split, method)


def _examples(context: _Context, store: Optional[Store]) -> Iterator[Figure]:
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


def _confusion(context: _Context, store: Optional[Store]) -> Iterator[Figure]:
    run = context.run
    if store is None:
        raise DataError("the confusion matrix is read from the run store; none was given")
    found = store.load_predictions(run.run_id)  # a damaged or changed file: a StoreError naming it
    yield confusion_figure(run_confusion(found, run.class_names, f"{run.label}, run {run.run_id}"))
