"""`evaluation.pretext_evaluation`: each task's figure and its reference."""

import numpy as np
import pytest
from conftest import uint8_images

from keras_selfie import evaluation
from keras_selfie import training

BATCH = 8


def batches(count=2):
    return [uint8_images(BATCH, seed=seed) for seed in range(count)]


@pytest.mark.parametrize(
    "method, metric, chance",
    [
        ("rotation", "pretext_accuracy", 1 / 4),
        # Batch distractors: the 4 masked patches of each of the 8 images.
        ("selfie", "patch_accuracy", 1 / (4 * BATCH)),
        # The positive among the other 2B - 1 views.
        ("simclr", "contrastive_accuracy", 1 / (2 * BATCH - 1)),
    ],
)
def test_accuracies_beside_chance(method, metric, chance):
    pretrainer = training.build_pretrainer("tiny", method, seed=0)
    result = evaluation.pretext_evaluation(pretrainer, batches())
    assert result["metric"] == evaluation.pretext_metric(pretrainer) == metric
    assert (result["baseline_kind"], result["direction"]) == ("chance", "max")
    assert result["trivial_answer"] is None
    assert result["baseline"] == pytest.approx(chance)
    assert result["baseline"] == evaluation.chance_level(pretrainer, BATCH)
    assert (result["batches"], result["batch_size"]) == (2, BATCH)
    assert 0 <= result["value"] <= 1 and np.isfinite(result["loss"])


def test_reconstruction_beside_its_input_handed_back():
    # The decoder's output layer starts at zero: the untrained model hands
    # back its (bicubic) input, so its error is the trivial baseline's.
    pretrainer = training.build_pretrainer("tiny", "super_resolution",
                                           seed=0)
    result = evaluation.pretext_evaluation(pretrainer, batches())
    assert (result["metric"], result["direction"], result["baseline_kind"]) \
        == ("reconstruction_error", "min", "trivial")
    assert result["trivial_answer"] == "input back"
    assert result["value"] == pytest.approx(result["baseline"], rel=1e-5)
    assert result["value"] == pytest.approx(result["loss"], rel=1e-5)
    assert evaluation.chance_level(pretrainer, BATCH) is None


@pytest.mark.parametrize(
    "loss_type, answer", [("classification", "prior colour"), ("l2", "grey")]
)
def test_colorization_beside_one_colour_everywhere(loss_type, answer):
    # The decoder's output layer starts at zero: the untrained model
    # predicts one colour everywhere (the prior's annealed mean, or grey
    # for L2), whose ab error is the trivial baseline.
    pretrainer = training.build_pretrainer(
        "tiny", "colorization", seed=0, loss_type=loss_type
    )
    images = batches()
    result = evaluation.pretext_evaluation(pretrainer, images)
    assert (result["metric"], result["direction"], result["baseline_kind"],
            result["trivial_answer"]) == ("ab_error", "min", "trivial", answer)
    assert result["value"] == pytest.approx(result["baseline"], rel=1e-4)
    # The same figure from the definition: the mean ab distance of the
    # images' colours to that one colour.
    colour = np.asarray(pretrainer.predict_ab(images[0]))[0, 0, 0]
    if loss_type == "l2":
        np.testing.assert_array_equal(colour, [0.0, 0.0])
    ab = np.concatenate([
        np.asarray(pretrainer(image, training=False)["ab"])
        for image in images
    ])
    expected = np.sqrt(((ab - colour) ** 2).sum(-1)).mean()
    assert result["baseline"] == pytest.approx(expected, rel=1e-4)


def test_labels_are_ignored_and_no_batch_is_an_error():
    pretrainer = training.build_pretrainer("tiny", "rotation", seed=0)
    images = batches(1)
    unlabeled = evaluation.pretext_evaluation(pretrainer, images)
    labeled = evaluation.pretext_evaluation(
        pretrainer, [(images[0], np.zeros(BATCH))]
    )
    assert labeled == unlabeled
    with pytest.raises(ValueError, match="empty"):
        evaluation.pretext_evaluation(pretrainer, [])
