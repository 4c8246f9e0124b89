import os
import socket
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_selfie.data import sources
from keras_selfie.data.sources import from_arrays
from keras_selfie.data.sources import load_image_folder
from keras_selfie.data.sources import load_tfds


# ---------------------------------------------------------------- load_tfds


def test_load_tfds_cifar10_images(tfds_data_dir):
    dataset = load_tfds("cifar10", split="test[:16]", data_dir=tfds_data_dir)
    assert dataset.element_spec == tf.TensorSpec((32, 32, 3), tf.uint8)
    images = np.stack(list(dataset.as_numpy_iterator()))
    assert images.shape == (16, 32, 32, 3)
    assert images.dtype == np.uint8
    # Real photographs, not blank arrays.
    assert images.std() > 20


def test_load_tfds_cifar10_labeled_pairs(tfds_data_dir):
    dataset = load_tfds(
        "cifar10", split="test[:200]", labeled=True, data_dir=tfds_data_dir
    )
    image_spec, label_spec = dataset.element_spec
    assert image_spec.shape == (32, 32, 3) and image_spec.dtype == tf.uint8
    assert label_spec.shape == () and label_spec.dtype == tf.int64
    labels = np.array([y for _, y in dataset.as_numpy_iterator()])
    assert labels.min() >= 0 and labels.max() <= 9
    assert len(np.unique(labels)) == 10


def test_load_tfds_slice_count(tfds_data_dir):
    dataset = load_tfds("cifar10", split="train[:1%]", data_dir=tfds_data_dir)
    count = dataset.reduce(0, lambda n, _: n + 1).numpy()
    assert count == 500


def test_load_tfds_reads_without_download(tfds_data_dir, monkeypatch):
    # A prepared dataset must not even look at the network.
    def no_network(*args, **kwargs):
        raise AssertionError("load_tfds tried to connect")

    monkeypatch.setattr(socket, "create_connection", no_network)
    dataset = load_tfds("cifar10", split="test[:2]", data_dir=tfds_data_dir)
    assert len(list(dataset)) == 2


def test_load_tfds_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="not a dataset known.*no_such_set"):
        load_tfds("no_such_set", data_dir=str(tmp_path))


def test_load_tfds_missing_label_and_non_image_keys(tfds_data_dir):
    with pytest.raises(ValueError, match="label_key='fine_label'"):
        load_tfds(
            "cifar10",
            labeled=True,
            label_key="fine_label",
            data_dir=tfds_data_dir,
        )
    with pytest.raises(ValueError, match="image feature.*image_key='label'"):
        load_tfds("cifar10", image_key="label", data_dir=tfds_data_dir)


def test_load_tfds_absent_without_download_names_folder(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_tfds("mnist", data_dir=str(tmp_path), download=False)
    message = str(info.value)
    assert "'mnist'" in message
    assert str(tmp_path) in message
    assert "TFDS_DATA_DIR" in message
    assert not any(tmp_path.iterdir())


def test_load_tfds_unreachable_host_fails_fast(tmp_path, monkeypatch):
    # A closed local port: the check fails at once and nothing downloads.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setattr(
        sources, "DOWNLOAD_CHECK_HOST", ("127.0.0.1", closed_port)
    )
    monkeypatch.setattr(sources, "DOWNLOAD_CHECK_TIMEOUT", 0.5)
    start = time.monotonic()
    with pytest.raises(FileNotFoundError, match="did not answer") as info:
        load_tfds("mnist", data_dir=str(tmp_path), download=True)
    assert time.monotonic() - start < 5
    assert str(tmp_path) in str(info.value)
    assert f"127.0.0.1:{closed_port}" in str(info.value)


def test_load_tfds_silent_host_times_out(tmp_path, monkeypatch):
    # A listening socket that never accepts fills its backlog, so further
    # connects hang until the timeout: it must be honoured.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    fillers = []
    try:
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(server.getsockname())
            fillers.append(filler)
        monkeypatch.setattr(
            sources, "DOWNLOAD_CHECK_HOST", server.getsockname()
        )
        monkeypatch.setattr(sources, "DOWNLOAD_CHECK_TIMEOUT", 0.5)
        start = time.monotonic()
        try:
            load_tfds("mnist", data_dir=str(tmp_path), download=True)
        except FileNotFoundError:
            pass
        else:
            pytest.skip("the local backlog accepted the connection")
        assert time.monotonic() - start < 5
    finally:
        for filler in fillers:
            filler.close()
        server.close()


# -------------------------------------------------------- load_image_folder


def _write(path, array, format=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=format)


def _half_black_half_white(height, width):
    image = np.zeros((height, width, 3), np.uint8)
    image[:, width // 2 :] = 255
    return image


@pytest.fixture
def mixed_folder(tmp_path):
    """PNG, JPEG, mixed sizes, grayscale, RGBA and one corrupt file."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    _write(folder / "a.png", rng.integers(0, 256, (20, 30, 3), np.uint8))
    _write(folder / "b.jpg", np.full((40, 24, 3), 200, np.uint8))
    _write(folder / "c_gray.png", np.full((16, 16), 77, np.uint8))
    rgba = np.zeros((12, 18, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 128
    _write(folder / "d_rgba.png", rgba)
    _write(folder / "e.jpeg", np.full((33, 33, 3), 10, np.uint8), "JPEG")
    (folder / "notes.txt").write_text("not an image")
    (folder / "zz_corrupt.jpg").write_bytes(
        rng.integers(0, 256, 500, np.uint8).tobytes()
    )
    return folder


def test_image_folder_raise_names_corrupt_file(mixed_folder):
    with pytest.raises(ValueError, match="zz_corrupt.jpg") as info:
        load_image_folder(mixed_folder, 16)
    assert "1 file(s)" in str(info.value)
    assert "a.png" not in str(info.value)


def test_image_folder_skip_counts_and_yields_the_others(mixed_folder):
    with pytest.warns(UserWarning, match="skipped 1 file.*zz_corrupt.jpg"):
        dataset = load_image_folder(mixed_folder, (16, 24), on_error="skip")
    assert dataset.num_skipped == 1
    assert [os.path.basename(p) for p in dataset.skipped_files] == [
        "zz_corrupt.jpg"
    ]
    assert dataset.class_names is None
    assert [os.path.basename(p) for p in dataset.file_paths] == [
        "a.png",
        "b.jpg",
        "c_gray.png",
        "d_rgba.png",
        "e.jpeg",
    ]
    assert dataset.element_spec == tf.TensorSpec((16, 24, 3), tf.uint8)
    images = list(dataset.as_numpy_iterator())
    assert len(images) == 5
    # Grayscale becomes equal R, G, B; RGBA loses its alpha channel.
    np.testing.assert_array_equal(images[2], np.full((16, 24, 3), 77))
    np.testing.assert_array_equal(images[3][..., 0], 255)
    np.testing.assert_array_equal(images[3][..., 1:], 0)
    np.testing.assert_allclose(images[1], 200, atol=2)


def test_image_folder_class_subfolders(tmp_path):
    for name, value, count in [("dog", 50, 2), ("cat", 100, 3), ("ant", 0, 1)]:
        for i in range(count):
            _write(
                tmp_path / name / f"{i}.png", np.full((8, 8, 3), value, np.uint8)
            )
    dataset = load_image_folder(tmp_path, 8)
    assert dataset.class_names == ["ant", "cat", "dog"]
    pairs = list(dataset.as_numpy_iterator())
    assert [int(y) for _, y in pairs] == [0, 1, 1, 1, 2, 2]
    assert [int(x[0, 0, 0]) for x, _ in pairs] == [0, 100, 100, 100, 50, 50]
    assert dataset.element_spec[1] == tf.TensorSpec((), tf.int64)

    unlabeled = load_image_folder(tmp_path, 8, labeled=False)
    assert unlabeled.element_spec == tf.TensorSpec((8, 8, 3), tf.uint8)
    assert len(list(unlabeled)) == 6


def test_image_folder_layout_errors(tmp_path):
    with pytest.raises(ValueError, match="missing"):
        load_image_folder(tmp_path / "nowhere", 8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No image files"):
        load_image_folder(tmp_path / "empty", 8)
    mixed = tmp_path / "mixed"
    _write(mixed / "loose.png", np.zeros((4, 4, 3), np.uint8))
    _write(mixed / "cls" / "x.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="Cannot infer"):
        load_image_folder(mixed, 8)
    with pytest.raises(ValueError, match="loose.png"):
        load_image_folder(mixed, 8, labeled=True)
    assert len(list(load_image_folder(mixed, 8, labeled=False))) == 2
    with pytest.raises(ValueError, match="crop_policy='stretch'"):
        load_image_folder(mixed, 8, labeled=False, crop_policy="stretch")
    with pytest.raises(ValueError, match="on_error='ignore'"):
        load_image_folder(mixed, 8, labeled=False, on_error="ignore")
    with pytest.raises(ValueError, match="image_size"):
        load_image_folder(mixed, (8, 0), labeled=False)


def test_image_folder_all_corrupt_is_an_error(tmp_path):
    (tmp_path / "x.png").write_bytes(b"nope")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="x.png"):
        load_image_folder(tmp_path, 8, on_error="skip")


@pytest.mark.parametrize(
    "crop_policy, expected_row",
    [
        # 8 x 32 -> 8 x 8: the middle quarter of the width, half black half
        # white.
        ("center_crop", [0, 0, 0, 0, 255, 255, 255, 255]),
        # Squeezed 4 times horizontally: still half black half white.
        ("resize", [0, 0, 0, 0, 255, 255, 255, 255]),
    ],
)
def test_crop_policies_content(tmp_path, crop_policy, expected_row):
    _write(tmp_path / "wide.png", _half_black_half_white(8, 32))
    dataset = load_image_folder(tmp_path, 8, crop_policy=crop_policy)
    (image,) = list(dataset.as_numpy_iterator())
    assert image.shape == (8, 8, 3)
    for row in image[..., 0]:
        np.testing.assert_allclose(row, expected_row, atol=40)


def test_center_crop_keeps_the_middle(tmp_path):
    # Black | white | black thirds of a 12 x 36 image: a center crop keeps
    # the white middle only, a resize keeps all three.
    image = np.zeros((12, 36, 3), np.uint8)
    image[:, 12:24] = 255
    _write(tmp_path / "thirds.png", image)
    (cropped,) = list(load_image_folder(tmp_path, 12).as_numpy_iterator())
    np.testing.assert_array_equal(cropped, 255)
    (resized,) = list(
        load_image_folder(tmp_path, 12, crop_policy="resize")
        .as_numpy_iterator()
    )
    assert resized[:, 0].max() < 60 and resized[:, -1].max() < 60
    assert resized[:, 6].min() > 200


def test_pad_policy_keeps_everything_and_pads_black(tmp_path):
    _write(tmp_path / "white.png", np.full((8, 32, 3), 255, np.uint8))
    (image,) = list(
        load_image_folder(tmp_path, 16, crop_policy="pad").as_numpy_iterator()
    )
    assert image.shape == (16, 16, 3)
    # 8 x 32 fits as 4 x 16, centred: 6 black rows, 4 white, 6 black.
    np.testing.assert_array_equal(image[:6], 0)
    np.testing.assert_array_equal(image[6:10], 255)
    np.testing.assert_array_equal(image[10:], 0)


# -------------------------------------------------------------- from_arrays


def test_from_arrays_uint8_labeled():
    images = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    dataset = from_arrays(images, labels=np.array([3, 1], np.int32))
    pairs = list(dataset.as_numpy_iterator())
    np.testing.assert_array_equal(pairs[1][0], images[1])
    assert [int(y) for _, y in pairs] == [3, 1]
    assert dataset.element_spec[1].dtype == tf.int64


@pytest.mark.parametrize("shape", [(2, 5, 5), (2, 5, 5, 1)])
def test_from_arrays_grayscale_becomes_rgb(shape):
    images = np.random.default_rng(0).random(shape).astype(np.float32)
    dataset = from_arrays(images)
    assert dataset.element_spec == tf.TensorSpec((5, 5, 3), tf.float32)
    first = next(dataset.as_numpy_iterator())
    for channel in range(3):
        np.testing.assert_array_equal(first[..., channel], images[0].reshape(5, 5))


@pytest.mark.parametrize(
    "images, labels, match",
    [
        (np.zeros((4, 4)), None, "Received: images.shape=\\(4, 4\\)"),
        (np.zeros((2, 4, 4, 2)), None, "C = 1 or 3"),
        (np.zeros((2, 4, 4, 4)), None, "C = 1 or 3"),
        (np.zeros((2, 4, 4, 3, 1)), None, "rank|shape"),
        (np.full((2, 4, 4, 3), "a"), None, "numeric"),
        (np.zeros((2, 4, 4, 3), np.int64), None, "uint8"),
        (np.array([np.nan]).repeat(48).reshape(1, 4, 4, 3), None, "finite"),
        (np.full((1, 4, 4, 3), np.inf), None, "finite"),
        (np.zeros((2, 4, 4, 3), np.uint8), np.array([1, 2, 3]), "same length"),
        (np.zeros((2, 4, 4, 3), np.uint8), np.array([0.5, 1.0]), "integer"),
        (np.zeros((0, 4, 4, 3), np.uint8), None, "at least one"),
    ],
)
def test_from_arrays_errors(images, labels, match):
    with pytest.raises(ValueError, match=match):
        from_arrays(images, labels)
