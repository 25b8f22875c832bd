"""`cnnlab predict` as a user runs it: image files read as the folder dataset reads them, a folder with a
file that is not an image (refused by name, the rest predicted, exit status 1), an .npz, JSON and CSV."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
from PIL import Image

from cnnlab.cli import main
from tests.cli.conftest import cnnlab
from tests.inference.conftest import save_images


def _pngs(folder, images):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        path = folder / f"digit{i}.png"
        Image.fromarray(image[0], "L").save(path)
        paths.append(path)
    return paths


def test_image_files_give_the_models_probabilities(trained, best, test_split, tmp_path, capsys):
    images = test_split[0][:4]
    paths = _pngs(tmp_path / "in", images)
    assert main(["predict", str(trained), *map(str, paths), "--top", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    expected = best.probabilities(images)
    assert [p["input"] for p in report["predictions"]] == [str(p) for p in paths]
    for row, prediction in enumerate(report["predictions"]):
        top = prediction["top"]
        assert len(top) == 3 and [t["probability"] for t in top] == sorted((t["probability"] for t in top), reverse=True)
        assert top[0]["index"] == int(expected[row].argmax()) and top[0]["class"] == best.class_names[top[0]["index"]]
        assert abs(top[0]["probability"] - float(expected[row].max())) < 1e-6


def test_a_larger_colour_image_is_made_grayscale_and_resized_as_training_read_files(best, test_split, tmp_path):
    from cnnlab.inference import predict_files

    big = Image.fromarray(test_split[0][0, 0], "L").convert("RGB").resize((24, 24))
    big.save(tmp_path / "big.png")
    expected = best.probabilities(big.convert("L").resize((8, 8), Image.Resampling.BILINEAR))
    got = predict_files(best, [tmp_path / "big.png"], k=10).predictions[0]
    assert {index: p for index, _, p in got.top} == {i: float(p) for i, p in enumerate(expected[0])}


def test_a_folder_with_an_unreadable_file_predicts_the_rest_and_exits_1(trained, test_split, tmp_path):
    folder = tmp_path / "photos"
    paths = _pngs(folder / "nested", test_split[0][:3])
    (folder / "notes.txt").write_text("not an image")
    (folder / ".DS_Store").write_bytes(b"\0junk")  # hidden: skipped, as the folder dataset skips it
    result = cnnlab("predict", trained, "--folder", folder, "--top", "2", "--csv")
    assert result.returncode == 1
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["input"], r["rank"]) for r in rows] == [(str(p), rank) for p in paths for rank in ("1", "2")]
    assert "refused 1 of 4 files" in result.stderr
    assert f"{folder / 'notes.txt'}: is not an image Pillow can read" in result.stderr
    assert ".DS_Store" not in result.stderr and "Traceback" not in result.stderr


def test_npz_arrays_in_either_layout(trained, best, test_split, tmp_path, capsys):
    images = test_split[0][:5]
    channels_last = save_images(tmp_path / "nhwc.npz", images.transpose(0, 2, 3, 1))
    assert main(["predict", str(trained), "--npz", str(channels_last), "--top", "1", "--json"]) == 0
    top1 = [p["top"][0]["index"] for p in json.loads(capsys.readouterr().out)["predictions"]]
    assert top1 == best.probabilities(images).argmax(1).tolist()


def test_bad_input_is_one_paragraph_with_exit_status_2(trained, tmp_path, capsys):
    assert main(["predict", str(trained)]) == 2
    said = capsys.readouterr().err
    assert "--folder" in said and "--npz" in said
    floats = save_images(tmp_path / "floats.npz", np.zeros((2, 1, 8, 8), np.float32))
    assert main(["predict", str(trained), "--npz", str(floats)]) == 2
    assert "error: images are float32; the model takes uint8 pixels" in capsys.readouterr().err
    wrong = save_images(tmp_path / "wrong.npz", np.zeros((2, 1, 28, 28), np.uint8))
    assert main(["predict", str(trained), "--npz", str(wrong)]) == 2
    assert "(2, 1, 28, 28) do not fit the model's input 1 x 8 x 8" in capsys.readouterr().err


def _claims(path, shape):
    """An .npz whose 'images' header claims ``shape`` uint8 items but holds 64 bytes."""
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("images.npy", header.getvalue() + b"\0" * 64)
    return path


def test_hostile_npz_files_are_one_error_naming_the_file(trained, tmp_path, capsys, monkeypatch):
    import cnnlab.data.arrays as arrays

    np.save(tmp_path / "single.npy", np.zeros((2, 1, 8, 8), np.uint8))
    np.savez(tmp_path / "scalar.npz", images=np.uint8(3))
    np.savez(tmp_path / "row.npz", images=np.zeros(64, np.uint8))
    # 1.6 MB of zeros, a few kB on disk: over the (lowered) memory budget, refused before it is inflated.
    np.savez_compressed(tmp_path / "bomb.npz", images=np.zeros((25_000, 8, 8), np.uint8))
    monkeypatch.setattr(arrays, "memory_budget", lambda: 1_000_000)
    cases = {"single.npy": "holds a single array (.npy)", "scalar.npz": "'images' has shape (); --npz takes N images",
             "row.npz": "'images' has shape (64,); --npz takes N images",
             "claims.npz": "'images' claims 1000000000000 items of uint8",
             "bomb.npz": "would take 1.6 MB in memory, more than the 1.0 MB"}
    _claims(tmp_path / "claims.npz", (10**12,))
    for name, reason in cases.items():
        assert main(["predict", str(trained), "--npz", str(tmp_path / name)]) == 2, name
        said = capsys.readouterr().err
        error = said.splitlines()[-1]  # after the line naming the run used
        assert error.startswith(f"error: {tmp_path / name}") and reason in error, said
        assert "Traceback" not in said
