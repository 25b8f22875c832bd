"""Image folders: class names, layouts, resizing, grayscale, and files that are not images."""

from __future__ import annotations

import pytest

from cnnlab.data import known_shape, load_source
from cnnlab.errors import DataError
from cnnlab.spec.study import Dataset

from .builders import write_png


def load(path, **options):
    return load_source(Dataset(name="folder", path=str(path), **options))


def test_one_sub_folder_per_class_sorted_names(image_folder):
    source = load(image_folder)
    assert source.class_names == ["bird", "cat", "dog"]
    assert source.train.images.shape == (9, 3, 8, 10) and source.test is None
    assert source.train.labels.tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 2]
    assert source.train.images[0, :, 0, 0].tolist() == [10, 10, 200]  # bird is blue
    assert source.train.images.is_contiguous()


def test_grayscale_and_resize(image_folder):
    source = load(image_folder, grayscale=True, image_size=[4, 5])
    assert source.train.images.shape == (9, 1, 4, 5)
    assert known_shape(Dataset(name="folder", path=str(image_folder), grayscale=True, image_size=[4, 5])) == ((1, 4, 5), 3)
    assert known_shape(Dataset(name="folder", path=str(image_folder))) is None


def test_images_of_different_sizes_need_image_size(image_folder):
    odd = write_png(image_folder / "cat" / "big.png", (20, 20), (1, 2, 3))
    with pytest.raises(DataError, match=f"{odd} is 20x20 pixels.*image_size"):
        load(image_folder)
    assert load(image_folder, image_size=[8, 10]).train.images.shape == (10, 3, 8, 10)


def test_non_image_and_empty_files_name_the_file(image_folder):
    text = image_folder / "dog" / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(DataError, match=f"{text} is not an image"):
        load(image_folder)
    text.unlink()
    empty = image_folder / "dog" / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=f"{empty} is empty"):
        load(image_folder)
    empty.unlink()
    broken = image_folder / "dog" / "broken.png"
    broken.write_bytes((image_folder / "dog" / "0.png").read_bytes()[:40])
    with pytest.raises(DataError, match=str(broken)):
        load(image_folder)


def test_hidden_files_are_skipped(image_folder):
    (image_folder / "cat" / ".DS_Store").write_bytes(b"\0\0junk")
    (image_folder / ".cache").mkdir()
    assert len(load(image_folder).train) == 9


def test_train_and_test_sub_folders(tmp_path):
    root = tmp_path / "split"
    for part, count in (("train", 3), ("test", 1)):
        for name in ("a", "b"):
            for i in range(count):
                write_png(root / part / name / f"{i}.png", (6, 6), (50, 60, 70))
    source = load(root)
    assert source.class_names == ["a", "b"] and len(source.train) == 6 and len(source.test) == 2
    write_png(root / "test" / "c" / "0.png", (6, 6), (1, 1, 1))
    with pytest.raises(DataError, match="class folders that .* lacks: c"):
        load(root)


def test_missing_folder_and_folder_without_classes(tmp_path):
    with pytest.raises(DataError, match="is not a folder"):
        load(tmp_path / "nothing")
    (tmp_path / "flat").mkdir()
    write_png(tmp_path / "flat" / "x.png", (4, 4), (0, 0, 0))
    with pytest.raises(DataError, match="no class sub-folders"):
        load(tmp_path / "flat")
