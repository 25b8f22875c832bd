"""Issue 19's bar: the best run exported as ONNX and run by onnxruntime in a process where torch is never
imported agrees with `cnnlab predict` on the whole test split: of a small study, and of the quickstart."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cnnlab.api import open_store
from cnnlab.cli import main
from cnnlab.data import DataCache
from cnnlab.inference import load_model
from cnnlab.spec.plan import RunConfig
from tests.conftest import EXAMPLES
from tests.inference.conftest import fresh_python, save_images

WITHOUT_TORCH = """
import json, sys
import numpy as np, onnxruntime
session = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
facts = json.loads(session.get_modelmeta().custom_metadata_map["cnnlab"])
images = np.load(sys.argv[2])["images"]
probabilities = session.run(None, {"pixels": images.astype(np.float32)})[0]
assert "torch" not in sys.modules, "onnxruntime pulled torch in"
print(json.dumps({"probabilities": probabilities.tolist(), "class_names": facts["class_names"],
                  "torch": "torch" in sys.modules}))
"""


def _agrees_on_the_whole_test_split(folder, images, best_id, tmp_path, capsys) -> None:
    npz = save_images(tmp_path / "test.npz", images)
    assert main(["export", str(folder), "--best", "--format", "onnx", "-o", str(tmp_path / "best.onnx")]) == 0
    onnx = json.loads(fresh_python(WITHOUT_TORCH, tmp_path / "best.onnx", npz))
    assert onnx["torch"] is False

    capsys.readouterr()
    assert main(["predict", str(folder), "--best", "--npz", str(npz), "--top", str(len(onnx["class_names"])),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["run_id"] == best_id and not report["refused"]
    assert len(report["predictions"]) == len(images)

    ort = np.array(onnx["probabilities"])
    cli = np.zeros_like(ort)
    for row, prediction in enumerate(report["predictions"]):
        assert prediction["input"] == f"test.npz[{row}]"
        for entry in prediction["top"]:
            cli[row, entry["index"]] = entry["probability"]
    assert [p["top"][0]["index"] for p in report["predictions"]] == ort.argmax(1).tolist()  # top-1 everywhere
    assert np.abs(cli - ort).max() < 1e-5
    assert [p["top"][0]["class"] for p in report["predictions"]] == [onnx["class_names"][i] for i in ort.argmax(1)]


def test_onnx_without_torch_agrees_with_cnnlab_predict_on_the_whole_test_split(trained, best, test_split, tmp_path,
                                                                               capsys):
    assert len(test_split[0]) == 200
    _agrees_on_the_whole_test_split(trained, test_split[0], best.run_id, tmp_path, capsys)


@pytest.mark.slow
def test_the_quickstarts_best_run_as_onnx_without_torch_agrees_with_predict_on_its_whole_test_split(tmp_path, capsys):
    # The quickstart spec itself (its 24 runs, one epoch each to keep this short), as the README runs it.
    folder = tmp_path / "quickstart"
    assert main(["run", str(EXAMPLES / "quickstart.yaml"), "--out", str(folder), "--epochs", "1", "--no-report",
                 "--quiet"]) == 0
    best = load_model(folder)
    with open_store(folder) as store:
        config = RunConfig.model_validate(store.run(best.run_id).config)
    splits, _ = DataCache().split(config)
    _agrees_on_the_whole_test_split(folder, splits.test.images.numpy(), best.run_id, tmp_path, capsys)
