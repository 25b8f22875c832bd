"""Exported files as a user elsewhere loads them: ONNX in onnxruntime and TorchScript in torch.jit, each
in a fresh process, give cnnlab's probabilities; safetensors + JSON rebuild the same model."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from cnnlab.cli import main
from cnnlab.inference import export_model

from tests.cli.conftest import cnnlab
from tests.inference.conftest import fresh_python, save_images

RUN_ONNX = """
import json, sys
import numpy as np, onnxruntime
session = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
meta = session.get_modelmeta().custom_metadata_map
images = np.load(sys.argv[2])["images"].astype(np.float32)
one = session.run(None, {"pixels": images[:1]})[0]            # the batch axis is free: 1 and N both run
probabilities = session.run(None, {"pixels": images})[0]
np.save(sys.argv[3], probabilities)
print(json.dumps({"meta": meta, "input": session.get_inputs()[0].shape, "one": one.tolist()}))
"""

RUN_TORCHSCRIPT = """
import json, sys
import numpy as np, torch
extra = {"cnnlab.json": ""}
model = torch.jit.load(sys.argv[1], _extra_files=extra)
images = torch.from_numpy(np.load(sys.argv[2])["images"]).float()
with torch.no_grad():
    np.save(sys.argv[3], model(images).numpy())
print(extra["cnnlab.json"].decode())  # torch.jit.load fills the extra files in as bytes
"""


def test_onnx_in_onnxruntime_gives_cnnlabs_probabilities_with_its_facts(best, test_split, tmp_path):
    images = test_split[0][:100]
    path = export_model(best, "onnx", tmp_path / "model.onnx")[0]
    out = json.loads(fresh_python(RUN_ONNX, path, save_images(tmp_path / "x.npz", images), tmp_path / "p.npy"))
    expected = best.probabilities(images)
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(out["one"], expected[:1], atol=1e-5, rtol=0)
    assert out["input"][1:] == [1, 8, 8] and not isinstance(out["input"][0], int)  # a named, dynamic batch axis
    meta = out["meta"]
    assert meta["run_id"] == best.run_id
    assert json.loads(meta["class_names"]) == [str(n) for n in range(10)]
    assert json.loads(meta["input_shape"]) == [1, 8, 8]
    normalization = json.loads(meta["normalization"])
    assert normalization["normalize"] == "standardize" and normalization["normalization_in_graph"] is True
    assert normalization["scale"] == pytest.approx(best.normalizer.scale.flatten().tolist())
    assert meta["cnnlab_version"] and json.loads(meta["cnnlab"])["run_id"] == best.run_id
    assert "0-255" in json.loads(meta["input"])["values"]


def test_torchscript_in_a_fresh_process_gives_cnnlabs_probabilities(best, test_split, tmp_path):
    images = test_split[0][:100]
    path = export_model(best, "torchscript", tmp_path / "model.pt")[0]
    facts = json.loads(fresh_python(RUN_TORCHSCRIPT, path, save_images(tmp_path / "x.npz", images), tmp_path / "p.npy"))
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), best.probabilities(images), atol=1e-5, rtol=0)
    assert facts["run_id"] == best.run_id and facts["class_names"] == best.class_names
    assert facts["input"]["name"] == "pixels" and facts["normalization_in_graph"] is True


def test_safetensors_and_its_json_rebuild_the_model(best, test_split, tmp_path):
    from safetensors.torch import load_file

    from cnnlab.models import build_resolved, resolved_from_dicts

    weights, beside = export_model(best, "safetensors", tmp_path / "w.safetensors")
    assert beside.name == "w.safetensors.json"
    facts = json.loads(beside.read_text())
    model = build_resolved(resolved_from_dicts(facts["layers"]), facts["input_shape"], len(facts["class_names"])).module
    model.load_state_dict(load_file(weights))
    model.eval()
    images = test_split[0][:100]
    channels = facts["input_shape"][0]
    scale = torch.tensor(facts["scale"]).reshape(1, channels, 1, 1)
    shift = torch.tensor(facts["shift"]).reshape(1, channels, 1, 1)
    with torch.no_grad():  # the user's side: normalize as the JSON says, then softmax of the logits
        probabilities = model(torch.from_numpy(images).float() * scale + shift).softmax(1).numpy()
    np.testing.assert_allclose(probabilities, best.probabilities(images), atol=1e-6, rtol=0)
    assert facts["output"].startswith("logits")


def test_cli_export_writes_the_default_path_and_refuses_a_bad_run(trained, best, tmp_path, capsys):
    result = cnnlab("export", trained, "--format", "torchscript")
    assert result.returncode == 0, result.stderr
    written = trained / "export" / f"{best.run_id}.pt"
    assert result.stdout.strip() == str(written) and written.stat().st_size > 0
    assert f"using the best run {best.run_id}" in result.stderr
    assert not [p for p in written.parent.iterdir() if p.name.startswith(".tmp-cnnlab-")]  # atomic: no debris

    assert main(["export", str(trained), "--run", "nosuchrun", "-o", str(tmp_path / "x.onnx")]) == 2
    said = capsys.readouterr().err
    assert "has no run 'nosuchrun'" in said and "cnnlab ls" in said
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize("linked", ["export folder", "export file"])
def test_a_linked_default_export_path_is_refused_and_its_target_untouched(trained, best, tmp_path, capsys, linked):
    import shutil

    folder = tmp_path / "shared-study"  # a study folder someone else made
    shutil.copytree(trained, folder, ignore=shutil.ignore_patterns("export"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # Named like a temporary left by a killed cnnlab: the atomic write's clean-up would delete it.
    (elsewhere / ".tmp-cnnlab-notes").write_text("someone's file\n")
    (elsewhere / f"{best.run_id}.onnx").write_text("someone's model\n")
    link = folder / "export"
    if linked == "export folder":
        link.symlink_to(elsewhere, target_is_directory=True)
    else:
        link.mkdir()
        link = link / f"{best.run_id}.onnx"
        link.symlink_to(elsewhere / f"{best.run_id}.onnx")
    before = {p.name: p.read_text() for p in elsewhere.iterdir()}
    assert main(["export", str(folder), "--format", "torchscript" if linked == "export folder" else "onnx"]) == 2
    said = capsys.readouterr().err.splitlines()[-1]
    assert said.startswith(f"error: {link} is a link") and "-o FILE" in said
    assert {p.name: p.read_text() for p in elsewhere.iterdir()} == before and link.is_symlink()
    # -o is the user's own choice of place: written there, through the same link.
    assert main(["export", str(folder), "--format", "torchscript", "-o", str(folder / "export" / "mine.pt")]) == 0
    assert (folder / "export" / "mine.pt").stat().st_size > 0


@pytest.mark.parametrize("format", ["torchscript", "safetensors"])
def test_an_output_that_cannot_be_written_is_one_error_and_writes_nothing(trained, tmp_path, capsys, format):
    (tmp_path / "a-folder").mkdir()
    cases = {tmp_path / "a-folder": "is a folder; give -o a file name",
             tmp_path / "a-file" / "model.out": "cannot write the exported model to",
             tmp_path / "read-only" / "model.out": "cannot write the exported model to"}
    (tmp_path / "a-file").write_text("in the way\n")
    (tmp_path / "read-only").mkdir(mode=0o555)
    if os.access(tmp_path / "read-only", os.W_OK):  # root writes anywhere
        del cases[tmp_path / "read-only" / "model.out"]
    for output, reason in cases.items():
        assert main(["export", str(trained), "--format", format, "-o", str(output)]) == 2, output
        said = capsys.readouterr().err
        assert "Traceback" not in said and said.splitlines()[-1].startswith("error: ") and reason in said, said
        assert str(output) in said.splitlines()[-1]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a-file", "a-folder", "read-only"]


def test_a_failed_safetensors_export_leaves_no_json_that_does_not_match_the_weights(trained, best, tmp_path,
                                                                                    capsys, monkeypatch):
    from cnnlab.api import open_store

    with open_store(trained) as store:
        other = next(run.id for run in store.runs() if run.id != best.run_id and run.done)
    target = tmp_path / "w.safetensors"
    assert main(["export", str(trained), "--format", "safetensors", "-o", str(target)]) == 0
    first = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real = os.replace

    def full_disk_on_the_weights(source, destination):
        if os.fspath(destination) == str(target):
            raise OSError(28, "No space left on device")
        return real(source, destination)

    monkeypatch.setattr(os, "replace", full_disk_on_the_weights)
    assert main(["export", str(trained), "--run", other, "--format", "safetensors", "-o", str(target)]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == first  # the best run's pair, whole and matching
