"""What inference needs travels with the weights (safetensors metadata, store.artifacts); runs stored
before it did get it recomputed from the dataset, or a clear error when the dataset is gone."""

from __future__ import annotations

import copy
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load

from cnnlab.api import load_model, open_store, run_study
from cnnlab.data import DataCache, normalization
from cnnlab.errors import DataError, StoreError
from cnnlab.spec.plan import RunConfig
from cnnlab.store.artifacts import INFERENCE_KEY, inference_facts, read_inference, serialize_weights
from tests.conftest import TINY_STUDY


def test_the_weights_file_holds_the_trainings_normalization_shape_and_classes(trained, best):
    with open_store(trained) as store:
        data = store.artifact_bytes(best.run_id, "weights")
        config = RunConfig.model_validate(store.run(best.run_id).config)
    facts = read_inference(data)
    scale, shift = normalization("standardize", DataCache().split(config)[1])
    assert facts["scale"] == scale.flatten().tolist() and facts["shift"] == shift.flatten().tolist()  # exact
    assert facts["scale"] != [1 / 255]  # standardize: the training split's own statistics
    assert facts["input_shape"] == [1, 8, 8] and facts["class_names"] == [str(n) for n in range(10)]
    assert facts["image_mode"] == "L" and facts["run_id"] == best.run_id and facts["normalize"] == "standardize"
    assert facts["dataset"] == {"name": "digits", "image_size": None, "grayscale": False}
    assert set(load(data)) == set(best.module.state_dict())  # a reader that ignores metadata loads the tensors


def _strip_metadata(folder, run_id):
    """Make a run look stored by a cnnlab that kept no inference facts (the store re-records its checksum)."""
    with open_store(folder) as store:
        plain = serialize_weights(load(store.artifact_bytes(run_id, "weights")))
        store.save_weights(run_id, plain)
        assert read_inference(store.artifact_bytes(run_id, "weights")) is None


def test_an_older_run_gets_its_facts_recomputed_from_the_dataset(trained, best, test_split, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(trained, folder)
    _strip_metadata(folder, best.run_id)
    old = load_model(folder, best.run_id)
    assert old.facts["scale"] == best.facts["scale"] and old.facts["shift"] == best.facts["shift"]
    assert np.array_equal(old.probabilities(test_split[0]), best.probabilities(test_split[0]))


@pytest.mark.parametrize("normalize", ["unit", "standardize"])
def test_an_older_run_whose_dataset_is_gone(normalize, tmp_path):
    rng = np.random.default_rng(0)
    arrays = tmp_path / "arrays.npz"
    np.savez(arrays, x_train=rng.integers(0, 256, (60, 6, 6, 3), dtype=np.uint8), y_train=np.arange(60) % 3)
    study = copy.deepcopy(TINY_STUDY)
    study.update(name="gone", variants={"none": {}},
                 architectures={"small": [{"conv": {"filters": 4, "kernel": 3, "padding": "same"}}, {"maxpool": 2},
                                          "flatten", {"dense": 3}]},
                 dataset={"name": "npz", "path": str(arrays), "normalize": normalize,
                          "split": {"train": 40, "val": 10, "test": 10}})
    study["train"]["epochs"] = 1
    assert run_study(study, tmp_path / "out").outcome.ok
    with open_store(tmp_path / "out") as store:
        run_id = store.runs()[0].id
    _strip_metadata(tmp_path / "out", run_id)
    arrays.unlink()
    if normalize == "unit":  # x / 255 needs no data
        assert load_model(tmp_path / "out").facts["scale"] == [pytest.approx(1 / 255)] * 3
        return
    with pytest.raises(DataError, match="stored before cnnlab kept its input normalization.*--data-dir.*rerun"):
        load_model(tmp_path / "out")


def test_damaged_facts_are_an_error_naming_the_file(tmp_path):
    class Spec:
        name, image_size, grayscale = "digits", None, False

    facts = inference_facts(run_id="r", cnnlab_version="v", input_shape=(3, 4, 4), class_names=["a", "b"],
                            normalize="unit", scale=torch.full((1, 3, 1, 1), 1 / 255), shift=torch.zeros(3), dataset=Spec)
    assert read_inference(serialize_weights({"w": torch.ones(2)}, facts))["scale"] == [float(np.float32(1 / 255))] * 3
    facts["scale"] = [1.0]  # one value for three channels
    path = tmp_path / "weights.safetensors"
    path.write_bytes(serialize_weights({"w": torch.ones(2)}, facts))
    with pytest.raises(StoreError, match=f"{path} is not a valid cnnlab weights file: its scale is not one"):
        read_inference(path)
    assert INFERENCE_KEY == "cnnlab.inference"


def _facts() -> dict:
    class Spec:
        name, image_size, grayscale = "digits", [4, 4], False

    return inference_facts(run_id="r", cnnlab_version="v", input_shape=(3, 4, 4), class_names=["a", "b"],
                           normalize="unit", scale=torch.full((3,), 1 / 255), shift=torch.zeros(3), dataset=Spec)


def _without(key):
    return lambda facts: facts.pop(key)


TAMPERED = {  # what a study folder from someone else may hold in its weights' metadata
    "format true": (lambda facts: facts.update(format=True), "has format 'True'"),
    "no cnnlab_version": (_without("cnnlab_version"), "its cnnlab_version is not a string"),
    "a numeric run_id": (lambda facts: facts.update(run_id=7), "its run_id is not a string"),
    "a bool in input_shape": (lambda facts: facts.update(input_shape=[3, True, 4]), "its input_shape is not"),
    "a bool as scale": (lambda facts: facts.update(scale=[True, 1.0, 1.0]), "its scale is not one finite number"),
    "a 400-digit shift": (lambda facts: facts.update(shift=[10**400, 0, 0]), "its shift is not one finite number"),
    "another layout": (lambda facts: facts.update(layout="NHWC"), "its layout is not 'NCHW'"),
    "an output of HTML": (lambda facts: facts.update(output="<script>"), "its output is not 'logits'"),
    "dataset a string": (lambda facts: facts.update(dataset="digits"), "its dataset is not"),
    "image_size a string": (lambda facts: facts["dataset"].update(image_size="4x4"), "its dataset is not"),
    "grayscale 1": (lambda facts: facts["dataset"].update(grayscale=1), "its dataset is not"),
}


@pytest.mark.parametrize("spoil, reason", TAMPERED.values(), ids=TAMPERED.keys())
def test_tampered_facts_are_an_error_naming_the_file(tmp_path, spoil, reason):
    facts = _facts()
    spoil(facts)
    path = tmp_path / "weights.safetensors"
    path.write_bytes(serialize_weights({"w": torch.ones(2)}, facts))
    with pytest.raises(StoreError) as error:
        read_inference(path)
    assert str(error.value).startswith(f"{path} is not a valid cnnlab weights file: ") and reason in str(error.value)


def test_only_the_known_facts_are_read_so_only_they_reach_an_export(tmp_path):
    facts = _facts()
    facts.update(note="<img src=x onerror=alert(1)>", scale=[1, 1, 1])  # ints are numbers; an unknown key is dropped
    read = read_inference(serialize_weights({"w": torch.ones(2)}, facts))
    assert read == {**_facts(), "scale": [1.0, 1.0, 1.0]} and "note" not in read
