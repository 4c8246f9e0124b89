"""Tests of every method's picture (`plot_predictions`), its TensorBoard
callback and `keras-selfie visualize` beyond Selfie.

One tiny pretrainer per method (`conftest.TINY_ARGS`) and one drawing of
4 images are shared by the tests of this file; the values drawn are read
back from the figure's panels and compared with the model's outputs.
"""

import functools
import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY
from conftest import TINY_ARGS
from conftest import TINY_BACKBONE
from conftest import backbone_inputs
from conftest import uint8_images
from PIL import Image

from keras_selfie import cli
from keras_selfie import methods
from keras_selfie.data.color import rgb_to_lab
from keras_selfie.data.transforms import NEIGHBOR_OFFSETS
from keras_selfie.visualization import PredictionImages
from keras_selfie.visualization import plot_predictions
from keras_selfie.visualization.classification import neighbor_name
from keras_selfie.visualization.classification import solve_jigsaw
from keras_selfie.visualization.figures import DPI
from keras_selfie.visualization.predictions import seed_states

IMAGES = uint8_images(4, seed=2)
SCALED = IMAGES / 255.0
GREEN, RED = "limegreen", "red"
CLASSIFICATION = (
    "rotation", "jigsaw", "relative_patch_location", "exemplar", "simclr"
)


@functools.cache
def tiny(method):
    """The method's tiny pretrainer, seeded; the pixel decoders' output
    layer away from zero (it starts at zero, predicting the input)."""
    config = TINY if method == "selfie" else {
        **TINY_BACKBONE, **TINY_ARGS[method]
    }
    model = methods.get(method)(**config, seed=0)
    if hasattr(model, "decoder"):
        kernel = model.decoder.get_layer("pixels").kernel
        kernel.assign(np.random.default_rng(0).normal(0, 0.05, kernel.shape))
    return model


@functools.cache
def drawn(method):
    """The method's picture of `IMAGES` (seed 0), drawn once."""
    return plot_predictions(tiny(method), IMAGES)


def outputs(method, seed=0):
    """The model's outputs on `IMAGES` with the picture's draws."""
    with seed_states(tiny(method), seed):
        result = tiny(method)(IMAGES, training=False)
    return {key: keras.ops.convert_to_numpy(v) for key, v in result.items()}


def seen_by_backbone(method):
    """What the backbone receives in the call the picture makes."""
    with seed_states(tiny(method), 0):
        inputs, _ = backbone_inputs(tiny(method), IMAGES)
    return inputs


def panels(figure):
    """`[(image, title, title colour)]` per row of panels."""
    axes = figure.axes
    columns = axes[0].get_subplotspec().get_gridspec().ncols
    return [
        [(np.asarray(a.get_images()[0].get_array()), a.get_title(),
          a.title.get_color()) for a in axes[row : row + columns]]
        for row in range(0, len(axes), columns)
    ]


def states(model):
    return [keras.ops.convert_to_numpy(g.state.value)
            for g in model._own_seed_generators()]


def contents(figure):
    """The title and image arrays of every axes, subfigures' included."""
    from matplotlib.axes import Axes

    return [
        (axes.get_title(), [np.asarray(image.get_array())
                            for image in axes.get_images()])
        for axes in figure.findobj(Axes)
    ]


def assert_same_contents(figure, other):
    drawn, again = contents(figure), contents(other)
    assert len(drawn) == len(again) > len(IMAGES)
    for (title, images), (other_title, other_images) in zip(drawn, again):
        assert title == other_title
        for image, other_image in zip(images, other_images, strict=True):
            np.testing.assert_array_equal(image, other_image)


@pytest.mark.parametrize("method", methods.names())
def test_every_method_draws_the_same_picture_twice(method, tmp_path):
    model = tiny(method)
    before = states(model)
    path = tmp_path / f"{method}.png"
    figure = plot_predictions(model, IMAGES, path=path)
    with Image.open(path) as image:
        width, height = figure.get_size_inches() * DPI
        assert image.size == (round(width), round(height))
    # The same seed draws the same masked positions, puzzles, pairs,
    # copies, views and holes; the model's own draws stay where they were.
    assert_same_contents(figure, drawn(method))
    for state, after in zip(before, states(model)):
        np.testing.assert_array_equal(state, after)
    if method != "selfie":
        assert len(panels(figure)) == len(IMAGES)  # One row an image.


def test_the_seed_not_the_generators_state_decides_the_draws():
    model = tiny("jigsaw")
    model(IMAGES[:1], training=False)  # Draws, as a training step does.
    assert_same_contents(plot_predictions(model, IMAGES), drawn("jigsaw"))
    titles = [title for title, _ in contents(drawn("jigsaw"))]
    other = [title for title, _ in contents(
        plot_predictions(model, IMAGES, seed=1)
    )]
    assert other != titles  # Other permutations drawn.


def test_rotation_titles_are_the_models_argmax_angles():
    predicted = outputs("rotation")["logits"].argmax(-1).reshape(4, -1)
    rows = panels(drawn("rotation"))
    for i, row in enumerate(rows):
        for turns, (image, title, color) in enumerate(row):
            np.testing.assert_allclose(image, np.rot90(SCALED[i], turns))
            assert title == f"predicted {90 * predicted[turns, i]}°"
            assert color == (GREEN if predicted[turns, i] == turns else RED)


def test_jigsaw_solved_by_the_true_permutation_is_the_image(monkeypatch):
    model = tiny("jigsaw")
    call = model.call

    def right_call(images, training=None):
        # A model that always names the permutation that was drawn.
        result = call(images, training=training)
        return {**result, "logits": keras.ops.one_hot(
            result["labels"], model.num_classes
        )}

    monkeypatch.setattr(model, "call", right_call)
    rows = panels(plot_predictions(model, IMAGES))
    offsets = outputs("jigsaw")["tile_offsets"]
    size = model.tile_size
    for i, (_, shuffled, solved) in enumerate(rows):
        covered = np.zeros(SCALED.shape[1:3], bool)
        for top, left in offsets[i]:
            covered[top : top + size, left : left + size] = True
        np.testing.assert_allclose(solved[0][covered], SCALED[i][covered])
        assert np.all(solved[0][~covered] == 0.5)
        assert solved[2] == GREEN
        # The shuffled puzzle holds the same tiles elsewhere.
        assert not np.allclose(shuffled[0][covered], SCALED[i][covered])


def test_solve_jigsaw_inverts_the_shuffle():
    tiles = np.arange(9) * 10
    permutation = np.random.default_rng(0).permutation(9)
    np.testing.assert_array_equal(
        solve_jigsaw(tiles[permutation], permutation), tiles
    )
    assert not np.array_equal(
        solve_jigsaw(tiles[permutation], np.roll(permutation, 1)), tiles
    )


def test_relative_patch_location_places_the_neighbour_as_predicted():
    model = tiny("relative_patch_location")
    result = outputs("relative_patch_location")
    kept = seen_by_backbone("relative_patch_location")
    batch, size = len(IMAGES), model.patch_size
    for i, (_, centre, neighbor, layout) in enumerate(
        panels(drawn("relative_patch_location"))
    ):
        pair = (i % 8) * batch + i  # all_neighbors: pairs neighbour-major
        label = result["labels"][pair]
        guess = result["logits"][pair].argmax()
        assert neighbor[1] == f"neighbour: {neighbor_name(label)}"
        assert layout[1] == f"predicted: {neighbor_name(guess)}"
        assert layout[2] == (GREEN if guess == label else RED)
        # The patches are those the model saw: colour dropping keeps one
        # channel of each as it was.
        for patch, seen in ((centre[0], kept[pair]),
                            (neighbor[0], kept[8 * batch + pair])):
            assert any(
                np.allclose(seen[..., c], patch[..., c], atol=1e-6)
                for c in range(3)
            )
        # The layout shows the neighbour at the predicted position.
        step = size + 1
        row, col = np.array(NEIGHBOR_OFFSETS[guess]) + 1
        np.testing.assert_allclose(
            layout[0][row * step : row * step + size,
                      col * step : col * step + size],
            neighbor[0],
        )
    assert neighbor_name(0) == "top left" and neighbor_name(6) == "bottom"


def test_exemplar_copies_are_the_models_with_their_predicted_seeds():
    result = outputs("exemplar")
    copies = seen_by_backbone("exemplar")[len(IMAGES):]
    predicted = result["logits"].argmax(-1)
    for i, (original, copy) in enumerate(panels(drawn("exemplar"))):
        np.testing.assert_allclose(original[0], SCALED[i])
        np.testing.assert_allclose(
            copy[0], np.clip(copies[i], 0, 1), atol=1e-6
        )
        # num_exemplars=4: the 4 images are one group of seeds.
        assert copy[1] == f"predicted: image {predicted[i]}"
        assert copy[2] == (GREEN if predicted[i] == i else RED)


def test_simclr_views_are_the_models_and_matches_its_argmax():
    result = outputs("simclr")
    views = seen_by_backbone("simclr")
    matched = result["logits"].argmax(-1)
    batch = len(IMAGES)
    for i, row in enumerate(panels(drawn("simclr"))):
        assert row[0][1] == f"image {i}"
        for view, (shown, match) in zip((i, batch + i), (row[1:3], row[3:])):
            np.testing.assert_allclose(
                shown[0], np.clip(views[view], 0, 1), atol=1e-6
            )
            other = matched[view]
            np.testing.assert_allclose(
                match[0], np.clip(views[other], 0, 1), atol=1e-6
            )
            assert match[1] == (
                f"image {other % batch} view {other // batch + 1}"
            )
            assert match[2] == (
                GREEN if other == result["labels"][view] else RED
            )


def test_inpainted_is_the_image_outside_the_hole_the_prediction_in_it():
    result = outputs("context_encoder")
    prediction = np.clip(result["reconstruction"], 0, 1)
    for i, (original, masked, inpainted) in enumerate(
        panels(drawn("context_encoder"))
    ):
        hole = result["mask"][i] > 0
        assert 0 < hole.sum() < hole.size
        np.testing.assert_allclose(original[0], SCALED[i], atol=1e-6)
        np.testing.assert_allclose(masked[0], result["inputs"][i])
        np.testing.assert_allclose(inpainted[0][~hole], SCALED[i][~hole],
                                   atol=1e-6)
        np.testing.assert_allclose(inpainted[0][hole], prediction[i][hole])
        # The prediction differs from the fill colour it starts from.
        assert np.abs(prediction[i][hole] - masked[0][hole]).max() > 1e-3


def test_super_resolution_panels_are_degrade_and_the_prediction():
    model = tiny("super_resolution")
    low, upsampled = (
        np.clip(keras.ops.convert_to_numpy(x), 0, 1)
        for x in model.degrade(model.preprocess(IMAGES))
    )
    prediction = np.clip(outputs("super_resolution")["reconstruction"], 0, 1)
    for i, row in enumerate(panels(drawn("super_resolution"))):
        expected = (low[i], upsampled[i], prediction[i], SCALED[i])
        for (image, _, _), value in zip(row, expected):
            np.testing.assert_allclose(image, value, atol=1e-6)
        assert row[0][0].shape == (8, 8, 3)
        assert row[0][1] == "8x8 input"


def test_colorization_panels_are_the_grey_input_and_colorize():
    model = tiny("colorization")
    coloured = keras.ops.convert_to_numpy(model.colorize(IMAGES))
    lightness = keras.ops.convert_to_numpy(
        rgb_to_lab(SCALED.astype("float32"))
    )[..., 0] / 100
    for i, row in enumerate(panels(drawn("colorization"))):
        grey, painted, original = (image for image, _, _ in row)
        for channel in range(3):
            np.testing.assert_allclose(grey[..., channel], lightness[i],
                                       atol=1e-5)
        np.testing.assert_allclose(painted, coloured[i], atol=1e-6)
        np.testing.assert_allclose(original, SCALED[i], atol=1e-6)
        # The colours are the model's: the grey image's differ.
        assert np.abs(painted - grey).max() > 1e-3


def test_unknown_models_and_options_are_refused():
    with pytest.raises(ValueError, match=r"RotationPretrainer \(rotation\)"):
        plot_predictions(keras.Sequential([keras.layers.Dense(1)]), IMAGES)
    with pytest.raises(ValueError, match="`image_index` is not an option of "
                       "the rotation picture"):
        plot_predictions(tiny("rotation"), IMAGES, image_index=1)
    with pytest.raises(ValueError, match="images"):
        plot_predictions(tiny("rotation"), IMAGES[:, :16])
    with pytest.raises(ValueError, match="seed"):
        plot_predictions(tiny("jigsaw"), IMAGES, seed=-1)
    with pytest.raises(ValueError, match="seed"):
        PredictionImages(IMAGES, "logs", seed="0")


def test_subclasses_get_their_base_method_s_picture():
    class Turned(methods.get("rotation")):
        pass

    model = Turned(**TINY_BACKBONE, seed=0)
    rows = panels(plot_predictions(model, IMAGES[:1]))
    assert rows[0][0][1].startswith("predicted ")


def test_prediction_images_logs_a_non_selfie_method(tmp_path):
    model = methods.get("rotation")(**TINY_BACKBONE, seed=1)
    # Eager SGD steps: Adam's slots cost 3 s more to make.
    model.compile(optimizer="sgd", run_eagerly=True)
    callback = PredictionImages(IMAGES, tmp_path, max_images=2)
    model.fit(IMAGES[:2], batch_size=2, epochs=1, verbose=0,
              callbacks=[callback])
    (path,) = glob.glob(os.path.join(tmp_path, "images", "events.*"))
    (value,) = [
        value for event in tf.compat.v1.train.summary_iterator(path)
        for value in event.summary.value
    ]
    assert value.tag == "predictions"
    width, height, _ = tf.make_ndarray(value.tensor)
    # 2 rows of the 4 rotations, 1.6 inches a cell.
    assert int(width) == 640 and int(height) > 2 * 160
    with pytest.raises(ValueError, match="not an option of the rotation"):
        PredictionImages(IMAGES, tmp_path, position_index=1).set_model(model)


def test_cli_draws_a_saved_non_selfie_pretrainer(tmp_path, capsys):
    saved = tmp_path / "jigsaw_pretrainer.keras"
    tiny("jigsaw").save(saved)
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(IMAGES):
        Image.fromarray(image).save(folder / f"{i}.png")
    output = tmp_path / "figure.png"
    argv = ["visualize", "--pretrained", str(saved), "--image-folder",
            str(folder), "--num-images", "3", "--output", str(output)]
    assert cli.main(argv) == 0
    assert f"Written: {output}" in capsys.readouterr().out
    with Image.open(output) as image:
        assert image.size[0] == 3 * 160  # original, shuffled, solved
    assert cli.main([*argv, "--image-index", "1"]) == 2
    assert "`image_index` is not an option" in capsys.readouterr().err
