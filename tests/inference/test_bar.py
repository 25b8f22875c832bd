"""Issue 19's bar: the best run exported as ONNX and run by onnxruntime in a process where torch is never
imported agrees with `cnnlab predict` on the whole test split."""

from __future__ import annotations

import json

import numpy as np

from cnnlab.cli import main
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


def test_onnx_without_torch_agrees_with_cnnlab_predict_on_the_whole_test_split(trained, best, test_split, tmp_path,
                                                                               capsys):
    images = test_split[0]
    npz = save_images(tmp_path / "test.npz", images)
    assert main(["export", str(trained), "--best", "--format", "onnx", "-o", str(tmp_path / "best.onnx")]) == 0
    onnx = json.loads(fresh_python(WITHOUT_TORCH, tmp_path / "best.onnx", npz))
    assert onnx["torch"] is False

    capsys.readouterr()
    assert main(["predict", str(trained), "--best", "--npz", str(npz), "--top", "10", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["run_id"] == best.run_id and not report["refused"]
    assert len(report["predictions"]) == len(images) == 200

    ort = np.array(onnx["probabilities"])
    cli = np.zeros_like(ort)
    for row, prediction in enumerate(report["predictions"]):
        assert prediction["input"] == f"test.npz[{row}]"
        for entry in prediction["top"]:
            cli[row, entry["index"]] = entry["probability"]
    assert [p["top"][0]["index"] for p in report["predictions"]] == ort.argmax(1).tolist()  # top-1 everywhere
    assert np.abs(cli - ort).max() < 1e-5
    assert [p["top"][0]["class"] for p in report["predictions"]] == [onnx["class_names"][i] for i in ort.argmax(1)]
