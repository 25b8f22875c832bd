"""cnnlab.load_model: the run the report calls best, in eval mode, with the training's exact preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import cnnlab
from cnnlab.api import open_store
from cnnlab.data import DataCache, normalization
from cnnlab.errors import DataError, StoreError
from cnnlab.spec.plan import RunConfig
from cnnlab.train import Normalizer


def test_best_is_the_run_the_report_calls_best(trained, best):
    from cnnlab.report.data import gather

    with open_store(trained) as store:
        report = gather(store)
        runs = store.runs(status="done")
    assert best.run_id == report.evaluation.run_id
    assert len(runs) == 4  # so "best" was a choice
    assert cnnlab.load_model(trained).run_id == best.run_id  # the root package's lazy attribute
    assert not best.module.training


def test_preprocess_is_the_training_normalization(trained, best, test_split):
    with open_store(trained) as store:
        config = RunConfig.model_validate(store.run(best.run_id).config)
    train = DataCache().split(config)[1]
    trained_with = Normalizer(*normalization("standardize", train))
    images = test_split[0][:10]
    assert torch.equal(best.preprocess(images), trained_with(torch.from_numpy(images)))
    assert torch.equal(best.preprocess(images.transpose(0, 2, 3, 1)), best.preprocess(images))  # channels last
    assert torch.equal(best.preprocess(images[0]), best.preprocess(images[:1]))  # one image
    pictures = [Image.fromarray(image[0], "L") for image in images[:2]]
    assert torch.equal(best.preprocess(pictures), best.preprocess(images[:2]))  # Pillow images


def test_a_run_id_prefix_and_bad_inputs(trained, best):
    assert cnnlab.load_model(trained, run=best.run_id[:8]).run_id == best.run_id
    with pytest.raises(StoreError, match="has no run 'zzzz'.*cnnlab ls"):
        cnnlab.load_model(trained, run="zzzz")
    with pytest.raises(DataError, match="uint8"):
        best.preprocess(np.zeros((1, 1, 8, 8), np.float32))
    with pytest.raises(DataError, match=r"\(3, 8\) do not fit the model's input 1 x 8 x 8"):
        best.preprocess(np.zeros((3, 8), np.uint8))


def test_preprocess_gives_the_input_on_the_models_device(best, test_split):
    import copy

    from cnnlab.inference import LoadedModel

    images = test_split[0][:3]
    # "meta" stands for any device but the CPU (CUDA below, where there is one): the module runs on what preprocess gives.
    elsewhere = LoadedModel(copy.deepcopy(best.module).to("meta"), best.run_id, best.class_names, best.input_shape,
                            best.facts, best.layers)
    x = elsewhere.preprocess(images)
    assert x.device.type == "meta" and elsewhere.module(x).shape == (3, len(best.class_names))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_model_loaded_on_cuda_takes_its_preprocessed_input_and_gives_the_cpus_probabilities(trained, best, test_split):
    images = test_split[0][:16]
    model = cnnlab.load_model(trained, device="cuda")
    x = model.preprocess(images)
    assert x.device.type == "cuda"
    with torch.no_grad():
        probabilities = model.module(x).softmax(1).cpu().numpy()
    np.testing.assert_allclose(probabilities, best.probabilities(images), atol=1e-4, rtol=0)
    np.testing.assert_allclose(model.probabilities(images), best.probabilities(images), atol=1e-4, rtol=0)
