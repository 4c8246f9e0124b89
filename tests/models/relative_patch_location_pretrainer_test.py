"""RelativePatchLocationPretrainer: where its patches lie, what their labels
say, and its colour guards, on made inputs."""

import itertools

import keras
import numpy as np
import pytest

import keras_selfie
from conftest import TINY_BACKBONE
from conftest import backbone_inputs
from keras_selfie.data import transforms
from keras_selfie.utils.random import normal

BACKBONE = TINY_BACKBONE


def _np(x):
    return keras.ops.convert_to_numpy(x)


def pooling_backbone(channels=3):
    """A backbone with no weights (global average pooling), so that the
    tests build fast and see the patches as they are."""
    inputs = keras.Input((None, None, channels))
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs))


def model_of(**kwargs):
    kwargs.setdefault("backbone", pooling_backbone(kwargs.get(
        "num_channels", 3
    )))
    return keras_selfie.RelativePatchLocationPretrainer(
        **{"image_size": 32, "seed": 0, **kwargs}
    )


def seen_by_backbone(model, images):
    """What `P` sees in one call: the centres, then the neighbours."""
    patches, outputs = backbone_inputs(model, images)
    centres, neighbors = np.split(patches, 2)
    return centres, neighbors, _np(outputs["labels"]), outputs


def coordinate_images(count, height=32, width=32):
    """Images whose pixels hold their own row (channel 0) and column
    (channel 1); channel 2 is 0."""
    rows, columns = np.meshgrid(
        np.arange(height), np.arange(width), indexing="ij"
    )
    image = np.stack([rows, columns, np.zeros_like(rows)], -1)
    return np.repeat(image[None].astype("float32"), count, axis=0)


def corners_of(patches, size):
    """The `(row, column)` each coordinate patch was cut at, after checking
    that it is an unbroken `size` x `size` piece of the image."""
    corners = patches[:, 0, 0, :2].astype(int)
    steps = np.arange(size)
    shape = patches.shape[:3]
    rows = corners[:, 0, None, None] + steps[None, :, None]
    columns = corners[:, 1, None, None] + steps[None, None, :]
    np.testing.assert_array_equal(patches[..., 0], np.broadcast_to(rows, shape))
    np.testing.assert_array_equal(
        patches[..., 1], np.broadcast_to(columns, shape)
    )
    return corners


def test_neighbor_labels_run_row_by_row():
    assert transforms.NEIGHBOR_OFFSETS == tuple(
        (row, column) for row, column in itertools.product((-1, 0, 1), (
            -1, 0, 1)) if (row, column) != (0, 0)
    )


@pytest.mark.parametrize("all_neighbors", [False, True])
@pytest.mark.parametrize("jitter", [0, 1])
def test_neighbor_with_label_k_lies_at_offset_k(jitter, all_neighbors):
    """On images whose pixels hold their coordinates, the patches P sees
    are unbroken pieces of the image, and the neighbour of label k is one
    cell (patch + gap, give or take the jitter) from the centre in the
    direction NEIGHBOR_OFFSETS[k], entirely on that side of it."""
    size, gap = 8, 2
    model = model_of(
        patch_size=size, gap=gap, jitter=jitter, color_guard=None,
        all_neighbors=all_neighbors,
    )
    count = 4 if all_neighbors else 96
    centres, neighbors, labels, outputs = seen_by_backbone(
        model, coordinate_images(count)
    )
    assert _np(outputs["logits"]).shape == (len(labels), 8)
    assert labels.dtype == np.int32
    if all_neighbors:
        np.testing.assert_array_equal(labels, np.repeat(np.arange(8), 4))
    assert sorted(set(labels)) == list(range(8))
    centre = corners_of(centres, size)
    neighbor = corners_of(neighbors, size)
    offsets = np.array(transforms.NEIGHBOR_OFFSETS)[labels]
    moved = neighbor - centre - offsets * (size + gap)
    assert np.abs(moved).max() == 2 * jitter  # each patch's jitter
    for axis in (0, 1):
        before = offsets[:, axis] == -1
        after = offsets[:, axis] == 1
        level = offsets[:, axis] == 0
        assert np.all(neighbor[before, axis] + size <= centre[before, axis])
        assert np.all(neighbor[after, axis] >= centre[after, axis] + size)
        assert np.all(
            np.abs(neighbor[level, axis] - centre[level, axis]) <= 2 * jitter
        )


@pytest.mark.parametrize(
    "image_size, size, gap, jitter",
    [((32, 32), 8, 2, 1), ((30, 40), 8, 2, 1), ((35, 35), 7, 4, 2),
     ((24, 24), 8, 0, 0)],
)
def test_gap_and_jitter_keep_every_patch_inside_the_image(
    image_size, size, gap, jitter
):
    """Over many draws every corner lies where a whole patch fits, the
    layout takes every position it can and the jitter every value."""
    model = model_of(
        image_size=image_size, patch_size=size, gap=gap, jitter=jitter,
        all_neighbors=True,
    )
    pairs = model.sample_pairs(512)
    centre, neighbor = _np(pairs["centre"]), _np(pairs["neighbor"])
    labels = _np(pairs["labels"])
    for corners in (centre, neighbor):
        assert corners.min(axis=0).min() >= 0
        assert np.all(corners.max(axis=0) <= np.subtract(image_size, size))
    # The layout's first and last positions put neighbours against the
    # image's edges.
    np.testing.assert_array_equal(neighbor.min(axis=0), [0, 0])
    np.testing.assert_array_equal(
        neighbor.max(axis=0), np.subtract(image_size, size)
    )
    # The centre's cell: the layout's positions shifted by the jitter.
    middle = size + gap + jitter
    for axis in (0, 1):
        values = set(centre[:, axis])
        slack = image_size[axis] - model.layout_size()
        assert values == set(range(middle - jitter, middle + slack + jitter
                                   + 1))
    offsets = np.array(transforms.NEIGHBOR_OFFSETS)[labels]
    moved = neighbor - centre - offsets * (size + gap)
    assert set(moved.ravel()) == set(range(-2 * jitter, 2 * jitter + 1))


def test_random_neighbor_is_uniform_and_the_draws_change():
    model = model_of()
    first = _np(model.sample_pairs(4000)["labels"])
    counts = np.bincount(first, minlength=8)
    # 500 expected per label; 5 standard deviations is about 100.
    assert np.abs(counts - 500).max() < 100, counts
    second = _np(model.sample_pairs(4000)["labels"])
    assert np.mean(first == second) < 0.2


def test_normal_draws_are_standard_normal():
    values = _np(normal((1000, 50), keras.random.SeedGenerator(0)))
    assert values.shape == (1000, 50) and np.all(np.isfinite(values))
    assert abs(values.mean()) < 0.01 and abs(values.std() - 1) < 0.01
    assert abs(np.mean(np.abs(values) < 1) - 0.6827) < 0.01


def test_projection_removes_only_the_green_magenta_component():
    pixels = np.random.default_rng(0).uniform(size=(2, 4, 5, 3))
    projected = _np(transforms.project_out_green_magenta(pixels))
    axis = np.array([-1.0, 2.0, -1.0])
    np.testing.assert_allclose(projected @ axis, 0, atol=1e-12)
    # What was removed lies along the axis: the rest is unchanged.
    removed = pixels - projected
    np.testing.assert_allclose(
        removed, (pixels @ axis)[..., None] * axis / 6, atol=1e-12
    )
    grey_and_red_blue = np.array([[1.0, 1.0, 1.0], [1.0, 0.0, -1.0]])
    np.testing.assert_allclose(
        _np(transforms.project_out_green_magenta(grey_and_red_blue)),
        grey_and_red_blue, atol=1e-12,
    )


def test_drop_colors_keeps_one_channel_and_fills_the_others_with_noise():
    images = np.random.default_rng(0).uniform(size=(3, 16, 16, 3))
    noise = np.random.default_rng(1).normal(size=images.shape)
    keep = np.array([2, 0, 1])
    dropped = _np(transforms.drop_colors(images, keep, noise, 0.01))
    for image, out, z, k in zip(images, dropped, noise, keep):
        np.testing.assert_array_equal(out[..., k], image[..., k])
        others = [c for c in range(3) if c != k]
        np.testing.assert_allclose(
            out[..., others], z[..., others] * 0.01 * image[..., k].std(),
            rtol=1e-12,
        )


def test_the_backbone_sees_the_guarded_patches():
    """`project`: P's patches have no green-magenta component; `drop`: each
    patch is exactly one channel of its crop, the others small noise, the
    channel kept varying over patches."""
    images = np.random.default_rng(2).integers(
        0, 256, (64, 32, 32, 3), dtype=np.uint8
    )
    plain = model_of(color_guard=None)
    centres, neighbors, labels, _ = seen_by_backbone(plain, images)
    for guard in ("project", "drop"):
        # The same seed draws the same pairs whatever the guard.
        model = model_of(color_guard=guard)
        guarded_centres, guarded_neighbors, guarded_labels, _ = (
            seen_by_backbone(model, images)
        )
        np.testing.assert_array_equal(guarded_labels, labels)
        crops = np.concatenate([centres, neighbors])
        guarded = np.concatenate([guarded_centres, guarded_neighbors])
        if guard == "project":
            np.testing.assert_allclose(
                guarded @ np.array([-1.0, 2.0, -1.0]), 0, atol=1e-5
            )
            np.testing.assert_allclose(
                guarded,
                _np(transforms.project_out_green_magenta(crops)),
                atol=1e-6,
            )
            continue
        equal = np.all(guarded == crops, axis=(1, 2))  # (2n, channels)
        np.testing.assert_array_equal(equal.sum(-1), 1)
        kept = equal.argmax(-1)
        assert sorted(set(kept)) == [0, 1, 2]
        for patch, crop, k in zip(guarded, crops, kept):
            others = np.delete(patch, k, axis=-1)
            assert 0 < others.std() < 0.03 * crop[..., k].std()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"image_size": 29}, r"`image_size`.*30 pixels.*image_size=\(29, 29"),
        ({"image_size": (32, 28)}, r"image_size=\(32, 28\)"),
        ({"patch_size": 10}, r"36 pixels.*patch_size=10.*image_size=\(32, 32\)"),
        ({"gap": 1}, r"`jitter`.*gap / 2.*jitter=1 with gap=1"),
        ({"gap": 4, "jitter": 3}, r"jitter=3 with gap=4"),
        ({"gap": -1}, r"`gap`.*integer >= 0.*gap=-1"),
        ({"gap": 2.0}, r"gap=2.0"),
        ({"jitter": -1}, r"jitter=-1"),
        ({"patch_size": 0}, r"patch_size=0"),
        ({"color_guard": "jitter"}, r"color_guard.*'drop', 'project'.*"
                                    r"color_guard='jitter'"),
        ({"color_guard": "project", "num_channels": 1},
         r"color_guard='project'.*num_channels=1"),
        ({"drop_noise_std": -0.1}, r"drop_noise_std=-0.1"),
        ({"all_neighbors": "yes"}, r"all_neighbors='yes'"),
        ({"head_hidden_dim": 0}, r"head_hidden_dim=0"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        model_of(**kwargs)


def test_images_of_the_wrong_size_are_refused():
    model = model_of()
    with pytest.raises(ValueError, match=r"\(batch, 32, 32, 3\)"):
        model(np.zeros((2, 28, 28, 3), "uint8"))


def test_one_channel_images_can_drop_or_go_unguarded():
    for guard in ("drop", None):
        model = model_of(num_channels=1, color_guard=guard)
        outputs = model(np.zeros((2, 32, 32, 1), "uint8"))
        assert _np(outputs["logits"]).shape == (2, 8)


def test_config_round_trip():
    model = keras_selfie.RelativePatchLocationPretrainer(
        **BACKBONE, patch_size=6, gap=4, jitter=2, color_guard="drop",
        drop_noise_std=0.05, all_neighbors=True, head_hidden_dim=16, seed=2,
    )
    config = model.get_config()
    clone = keras_selfie.RelativePatchLocationPretrainer.from_config(config)
    assert clone.get_config() == config
    assert {key: config[key] for key in (
        "patch_size", "gap", "jitter", "color_guard", "drop_noise_std",
        "all_neighbors", "head_hidden_dim",
    )} == dict(patch_size=6, gap=4, jitter=2, color_guard="drop",
               drop_noise_std=0.05, all_neighbors=True, head_hidden_dim=16)
    # The head classifies the concatenated pair of d = 128 features.
    assert [w.shape for w in clone.head.weights] == [
        (256, 16), (16,), (16, 8), (8,)
    ]
    assert model.chance_accuracy() == 0.125
    assert model.metric_directions() == {
        "loss": "min", "pretext_accuracy": "max"
    }
    assert keras_selfie.methods.get("relative_patch_location") is type(model)


def test_defaults():
    model = model_of()
    assert (model.patch_size, model.gap, model.jitter) == (8, 2, 1)
    assert model.layout_size() == 30
    assert model.color_guard == "project" and model.drop_noise_std == 0.01
    assert not model.all_neighbors and model.head_hidden_dim == 512
