"""Tests of `keras_selfie.visualization`: pictures, curves, TensorBoard."""

import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY
from PIL import Image

from keras_selfie.models import SelfiePretrainer
from keras_selfie.visualization import PredictionImages
from keras_selfie.visualization import draw_predictions
from keras_selfie.visualization import plot_predictions
from keras_selfie.visualization import plot_training_curves
from keras_selfie.visualization import predict_patches
from keras_selfie.visualization import rank_candidates
from keras_selfie.visualization.figures import DPI

LIMEGREEN = (50, 205, 50)
RED = (255, 0, 0)


@pytest.fixture(scope="module")
def pretrainer():
    keras.utils.set_random_seed(0)
    return SelfiePretrainer(**TINY, seed=0)


def _images(n, seed=0):
    return np.random.default_rng(seed).integers(
        0, 256, size=(n, 32, 32, 3), dtype="uint8"
    )


def _pixels(path):
    return np.asarray(Image.open(path).convert("RGB")).astype("int32")


def _mask_of(pixels, color, tolerance=8):
    return np.all(np.abs(pixels - np.array(color)) <= tolerance, axis=-1)


def _scores(right):
    """Scores `(batch, M, M)` whose row j picks column j where `right`."""
    batch, m = right.shape
    scores = np.zeros((batch, m, m), dtype="float32")
    for i in range(batch):
        for j in range(m):
            scores[i, j, j if right[i, j] else (j + 1) % m] = 1.0
    return scores


def _pixel_box(figure, axes, position, patch_size=8, grid_width=4):
    """The pixel rows and columns in the PNG a patch outline may cover."""
    row, col = divmod(position, grid_width)
    corners = axes.transData.transform(
        [
            (col * patch_size - 0.5, row * patch_size - 0.5),
            (col * patch_size + patch_size - 0.5,
             row * patch_size + patch_size - 0.5),
        ]
    )
    height = figure.get_size_inches()[1] * DPI
    xs = sorted(corners[:, 0])
    ys = sorted(height - corners[:, 1])  # PNG rows count from the top.
    return ys, xs


class TestDrawPredictions:
    # Two gray 32x32 images (no pixel is green or red), 4x4 grid, M = 4.
    images = np.full((2, 32, 32, 3), 128, dtype="uint8")
    positions = np.array([[0, 5, 10, 15], [3, 6, 9, 12]])

    def test_right_and_wrong_outlines_in_their_colours(self, tmp_path):
        right = np.array([[True, True, True, False], [True] * 4])
        path = tmp_path / "pred.png"
        figure = draw_predictions(
            self.images, self.positions, _scores(right), 8, path=path,
            image_index=0, position_index=0,
        )
        pixels = _pixels(path)
        assert _mask_of(pixels, LIMEGREEN).sum() > 100
        red = np.argwhere(_mask_of(pixels, RED))
        assert len(red) > 20
        # The only wrong prediction is image 0's position 15 (grid row 3,
        # column 3), and position 0 (ranked below) is right: every red
        # pixel belongs to that outline.
        (top, bottom), (left, right_edge) = _pixel_box(
            figure, figure.subfigs[0].axes[0], 15
        )
        margin = 4  # Half the line width and antialiasing.
        assert red[:, 0].min() >= top - margin
        assert red[:, 0].max() <= bottom + margin
        assert red[:, 1].min() >= left - margin
        assert red[:, 1].max() <= right_edge + margin

    def test_all_right_has_no_wrong_colour(self, tmp_path):
        path = tmp_path / "pred.png"
        draw_predictions(
            self.images, self.positions, _scores(np.ones((2, 4), bool)), 8,
            path=path, correct_color="blue", wrong_color="limegreen",
        )
        pixels = _pixels(path)
        assert _mask_of(pixels, (0, 0, 255)).sum() > 100
        assert _mask_of(pixels, LIMEGREEN).sum() == 0

    def test_candidates_drawn_by_rank_with_the_true_one_marked(self):
        scores = _scores(np.ones((2, 4), bool))
        scores[1, 2] = [0.3, -1.0, 0.1, 2.0]  # True patch (2) ranked 2nd.
        figure = draw_predictions(
            self.images, self.positions, scores, 8,
            image_index=1, position_index=2,
        )
        titles = [axes.get_title() for axes in figure.subfigs[1].axes[1:5]]
        assert titles == ["1. 2.00", "2. 0.30", "3. 0.10 true", "4. -1.00"]
        assert "ranked 3 of 4" in figure.subfigs[1].get_suptitle()

    def test_num_candidates_limits_the_cells(self):
        figure = draw_predictions(
            self.images, self.positions, _scores(np.ones((2, 4), bool)), 8,
            num_candidates=2,
        )
        drawn = [a for a in figure.subfigs[1].axes if a.axison]
        assert len(drawn) == 3  # The query and two candidates.

    @pytest.mark.parametrize(
        "kwargs, match",
        [
            ({"image_index": 2}, "image_index"),
            ({"position_index": -1}, "position_index"),
            ({"num_candidates": 5}, "num_candidates"),
            ({"columns": 0}, "columns"),
            ({"wrong_color": "not-a-colour"}, "wrong_color"),
            ({"patch_size": 6}, "patch_size"),
            ({"scores": np.zeros((2, 4, 3))}, "scores"),
            ({"decoder_positions": [[0, 5, 10, 16], [0, 1, 2, 3]]},
             "decoder_positions"),
        ],
    )
    def test_bad_arguments(self, kwargs, match):
        arguments = dict(
            images=self.images,
            decoder_positions=self.positions,
            scores=_scores(np.ones((2, 4), bool)),
            patch_size=8,
        )
        arguments.update(kwargs)
        with pytest.raises(ValueError, match=match):
            draw_predictions(**arguments)


def test_rank_candidates_is_descending_argsort():
    scores = np.random.default_rng(3).normal(size=7)
    ranking = rank_candidates(scores)
    np.testing.assert_array_equal(ranking, np.argsort(scores)[::-1])
    assert list(rank_candidates([1.0, 3.0, 3.0, 0.0])) == [1, 2, 0, 3]
    with pytest.raises(ValueError, match="rank 1"):
        rank_candidates(np.zeros((2, 2)))


class TestPredictPatches:
    def test_matches_the_model_and_its_argmax(self, pretrainer):
        images = _images(3)
        positions = np.array([[0, 1, 2, 3], [15, 4, 9, 2], [7, 8, 5, 6]])
        result = predict_patches(pretrainer, images, positions)
        batch_logits = keras.ops.convert_to_numpy(
            pretrainer(images, decoder_positions=positions, training=False)[
                "logits"
            ]
        )
        # The model scores all 3 * 4 patches of the batch; the picture
        # ranks the image's own 4: the diagonal blocks of those scores.
        assert batch_logits.shape == (3, 4, 12)
        logits = np.stack(
            [batch_logits[i, :, 4 * i : 4 * i + 4] for i in range(3)]
        )
        np.testing.assert_allclose(result["scores"], logits, rtol=1e-5)
        assert result["images"] is not None
        np.testing.assert_array_equal(result["images"], images)
        np.testing.assert_array_equal(result["decoder_positions"], positions)
        expected = np.stack(
            [
                [np.argmax(logits[i, j]) == j for j in range(4)]
                for i in range(3)
            ]
        )
        np.testing.assert_array_equal(result["correct"], expected)
        np.testing.assert_array_equal(
            result["predicted"], logits.argmax(axis=-1)
        )
        assert result["scores"].shape == (3, 4, 4)
        assert result["scores"].dtype == np.float32
        assert result["correct"].dtype == bool
        assert result["decoder_positions"].dtype == np.int32

    def test_random_split_when_no_positions(self, pretrainer):
        positions = predict_patches(pretrainer, _images(5))[
            "decoder_positions"
        ]
        assert positions.shape == (5, 4)
        assert all(len(set(row)) == 4 for row in positions.tolist())
        assert positions.min() >= 0 and positions.max() < 16

    def test_bad_input(self, pretrainer):
        with pytest.raises(ValueError, match="images"):
            predict_patches(pretrainer, _images(2)[:, :16, :16])
        with pytest.raises(ValueError, match="decoder_positions"):
            predict_patches(pretrainer, _images(2), [[0, 1, 2, 3]])


class TestPlotPredictions:
    def test_writes_a_png_of_the_layout_size(self, pretrainer, tmp_path):
        path = tmp_path / "pred.png"
        figure = plot_predictions(pretrainer, _images(8), path=path)
        with Image.open(path) as image:
            assert image.format == "PNG"
            # 8 cells of 1.6 in at 100 dpi; two rows of 2.05 in + titles.
            assert image.size == (1280, 480)
        assert len([a for a in figure.subfigs[0].axes if a.axison]) == 8
        path = tmp_path / "columns.png"
        plot_predictions(pretrainer, _images(8), path=path, columns=4)
        with Image.open(path) as image:
            assert image.size == (640, 890)  # 2 + 2 rows.

    def test_errors_before_running_the_model(self, pretrainer):
        with pytest.raises(ValueError, match="image_index"):
            plot_predictions(pretrainer, _images(2), image_index=2)
        with pytest.raises(ValueError, match="position_index"):
            plot_predictions(pretrainer, _images(2), position_index=4)
        with pytest.raises(ValueError, match="images"):
            plot_predictions(pretrainer, _images(2)[..., :1])


class TestTrainingCurves:
    def test_panels_and_epochs(self, tmp_path):
        path = tmp_path / "curves.png"
        figure = plot_training_curves(
            {
                "loss": [3.0, 2.0, 1.5],
                "val_loss": [3.1, 2.2, 1.7],
                "patch_accuracy": [0.25, 0.3, 0.35],
                "learning_rate": [0.1, 0.1, 0.1],
            },
            path=path,
        )
        assert [a.get_title() for a in figure.axes] == [
            "Loss", "Patch accuracy"
        ]
        with Image.open(path) as image:
            assert image.size == (800, 320)
        assert figure.axes[0].get_yscale() == "log"
        assert figure.axes[1].get_yscale() == "linear"
        lines = {l.get_label(): l for l in figure.axes[0].get_lines()}
        assert list(lines["val_loss"].get_xdata()) == [1, 2, 3]
        assert list(lines["val_loss"].get_ydata()) == [3.1, 2.2, 1.7]

    @pytest.mark.parametrize(
        "knn", [[None, 0.2, float("nan"), 0.3], {1: 0.2, 3: 0.3}]
    )
    def test_knn_panel_at_evaluated_epochs(self, knn):
        history = keras.callbacks.History()
        history.history = {"loss": [4.0, 3.0, 2.0, 1.0], "knn_accuracy": knn}
        figure = plot_training_curves(history)
        assert [a.get_title() for a in figure.axes] == [
            "Loss", "kNN accuracy"
        ]
        (line,) = figure.axes[1].get_lines()
        assert list(line.get_xdata()) == [2, 4]
        assert list(line.get_ydata()) == [0.2, 0.3]

    def test_draws_whatever_metrics_the_task_logs(self):
        # Another pretext task's metric, after the loss; bookkeeping left
        # out.
        figure = plot_training_curves({
            "pretext_accuracy": [0.3, 0.5], "loss": [2.0, 1.0],
            "val_pretext_accuracy": [0.2, 0.4], "learning_rate": [0.1, 0.05],
            "epoch": [0, 1],
        })
        assert [a.get_title() for a in figure.axes] == [
            "Loss", "Pretext accuracy"
        ]
        labels = [line.get_label() for line in figure.axes[1].get_lines()]
        assert labels == ["pretext_accuracy", "val_pretext_accuracy"]
        assert list(figure.axes[1].get_lines()[1].get_ydata()) == [0.2, 0.4]

    @pytest.mark.parametrize(
        "history, match",
        [
            ({}, "no metric to draw"),
            ({"epoch": [0], "learning_rate": [0.1]}, "no metric to draw"),
            ({"loss": []}, "empty"),
            ({"loss": [3.0, 2.0], "knn_accuracy": [0.2]}, "knn_accuracy"),
            ([1.0, 2.0], "history"),
        ],
    )
    def test_bad_history(self, history, match):
        with pytest.raises(ValueError, match=match):
            plot_training_curves(history)


def _image_events(log_dir):
    events = []
    for path in glob.glob(os.path.join(log_dir, "images", "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                events.append((event.step, value))
    return sorted(events, key=lambda item: item[0])


class TestPredictionImages:
    def test_logs_images_during_fit(self, tmp_path):
        keras.utils.set_random_seed(1)
        model = SelfiePretrainer(**TINY, seed=1)
        # Eager SGD steps: tracing the train step costs ~30 s on 2 CPUs,
        # making Adam's slots 3 s.
        model.compile(optimizer="sgd", run_eagerly=True)
        callback = PredictionImages(
            _images(10), tmp_path, every_n_epochs=2, max_images=3
        )
        model.fit(
            _images(4, seed=1), batch_size=4, epochs=3, verbose=0,
            callbacks=[callback],
        )
        events = _image_events(str(tmp_path))
        # Epoch 2 (step 1) by the schedule, epoch 3 (step 2) as the last.
        assert [step for step, _ in events] == [1, 2]
        assert {value.tag for _, value in events} == {"predictions"}
        width, height, png = tf.make_ndarray(events[0][1].tensor)[:3]
        # 3 images, or the query and its 4 candidates: 5 cells a row.
        assert (int(width), int(height)) == (800, 480)
        assert tf.image.decode_png(png).shape == (480, 800, 4)

    def test_same_positions_every_epoch_training_splits_left_alone(
        self, pretrainer, tmp_path
    ):
        callback = PredictionImages(_images(2), tmp_path, name="pictures")
        callback.set_model(pretrainer)
        callback.on_train_begin()
        state = keras.ops.convert_to_numpy(pretrainer.seed_generator.state)
        callback.on_epoch_end(4)
        callback.on_epoch_end(5)
        callback.on_train_end()
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(pretrainer.seed_generator.state), state
        )
        events = _image_events(str(tmp_path))
        assert [(s, v.tag) for s, v in events] == [
            (4, "pictures"), (5, "pictures")
        ]
        first, second = (tf.make_ndarray(v.tensor)[2] for _, v in events)
        assert first == second

    def test_bad_arguments(self, tmp_path):
        with pytest.raises(ValueError, match="every_n_epochs"):
            PredictionImages(_images(2), tmp_path, every_n_epochs=0)
        with pytest.raises(ValueError, match="images"):
            PredictionImages(_images(2)[0], tmp_path)
        callback = PredictionImages(_images(2), tmp_path)
        with pytest.raises(ValueError, match="SelfiePretrainer"):
            callback.set_model(keras.Sequential([keras.layers.Dense(1)]))
        small = SelfiePretrainer(**{**TINY, "image_size": 16, "patch_size": 4})
        with pytest.raises(ValueError, match="images"):
            callback.set_model(small)
