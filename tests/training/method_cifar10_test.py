"""Each pretext task learns on the real CIFAR-10 in a short run.

One `training.run_pretraining` per method (the `tiny` preset's backbone,
the steps in `RUNS`), then the pretext accuracy on held-out test images
in inference mode, which must be clearly above the task's chance level.
After so few steps batch normalisation's moving averages (momentum 0.99)
are still near their initial values, and inference with them sits at
chance whatever the weights learned; they are recomputed first on 320
training images (`evaluation.recalibrate_batch_norm`, as the Table 1
protocol does before testing). For a contrastive method (SimCLR: the
positive among the 2B - 1 other views of a test batch) the baseline is the
higher of chance, 1/(2B - 1), and the same model untrained, measured alike.
A reconstruction method's held-out error must be below that of its trivial
prediction (what P saw), and colorization's loss below that of its
untrained model (the colour prior in every cell), paired over the test
images. Selfie's own run is `cifar10_test.py`.
"""

import math

import numpy as np
import pytest

from keras_selfie import data
from keras_selfie import evaluation
from keras_selfie import methods
from keras_selfie import training
from keras_selfie.losses import masked_squared_error
from keras_selfie.losses import pixel_crossentropy
from keras_selfie.models import ClassificationPretrainer
from keras_selfie.models import ColorizationPretrainer
from keras_selfie.models import ReconstructionPretrainer

# Method -> its run: arguments beside the tiny backbone (`config`), steps
# of batch `batch_size`, the optimizer (the preset's unless given), the
# learning rate and the held-out test images (`TEST_IMAGES` unless given),
# called in batches of `test_batch` (`TEST_BATCH` unless given).
# A method added to the registry adds its entry.
RUNS = {
    "rotation": dict(steps=60, batch_size=16, learning_rate=0.05),
    # The classifier that takes unlabeled images: each copy among the 16
    # images of its group (chance 1/16; the test batches of 256 hold 16).
    "exemplar": dict(
        config={"classifier": "batch", "num_exemplars": 16,
                "transformations_per_image": 2},
        steps=20, batch_size=16, learning_rate=0.05,
    ),
    # All 8 pairs of every image, on 2,048 test images (16,384 predictions,
    # chance 1/8, must exceed 0.138): one random pair per image learns too
    # slowly on 8x8 patches for a short run, and AdamW climbs faster than
    # SGD here. The slowest run of the zoo: 150 steps reached 0.156 and
    # 0.155 over two seeds on 256 test images (300 steps: 0.175, 0.167),
    # seed 0 0.150 and 0.148 on 1,024 (threshold 0.143; batch norm
    # recalibrated on 10 batches of 32 and on 2 of 160), 0.150 on 2,048;
    # more test images, cheap at inference, narrow the threshold instead.
    "relative_patch_location": dict(
        config={"all_neighbors": True}, optimizer="adamw",
        steps=150, batch_size=32, learning_rate=0.003, test_images=2048,
    ),
    # Crops and flips only: with the paper's colour jitter and colour drop
    # 30 steps do not yet beat an untrained P (its baseline, below), which
    # matches two views by their colours (0.045 against chance 1/127).
    # Its test batches of 64 set its chance, 1/127.
    "simclr": dict(
        config={"color_strength": 0, "grayscale_probability": 0},
        steps=20, batch_size=32, learning_rate=0.1, test_batch=64,
    ),
    # 2x2 puzzles of 13x13 tiles, 10 permutations (chance 0.1): 40 steps
    # reach 0.29 to 0.36 (seeds 0, 1; threshold 0.19); 30 steps reach 0.16
    # and 0.33, 20 steps of 32 stay below it, and so does a hidden layer
    # without batch normalisation (40 steps: 0.13 and 0.08). The
    # default 3x3 grid of 8x8 tiles needs about 150 steps.
    "jigsaw": dict(
        steps=40, batch_size=64, learning_rate=0.05,
        config={"grid_size": 2, "num_permutations": 10},
    ),
    # Held-out error of the hole below filling it with the mean colour.
    "context_encoder": dict(
        config={"decoder_filters": 16}, steps=60, batch_size=32,
        learning_rate=0.1,
    ),
    # Held-out error below that of the bicubic-upsampled 8x8 copy; the L2
    # gradients of so small a residual need AdamW's scaling.
    "super_resolution": dict(
        config={"decoder_filters": 16}, steps=60, batch_size=32,
        optimizer="adamw", learning_rate=0.01,
    ),
    # The paper's rebalanced classification over 229 ab bins: held-out loss
    # below the untrained model's, which predicts the smoothed CIFAR-10
    # prior in every cell (4.01 against 4.52, 7.0 standard errors). So
    # short a run learns little more than the rebalanced colour
    # distribution that ignores the picture: fitted on 2,048 training
    # images, that scores 4.07 (3.92 fitted on the test images
    # themselves); 150 steps reach 3.91.
    "colorization": dict(steps=40, batch_size=32, learning_rate=0.1),
}
# How far above chance the test accuracy must be: in standard errors of the
# accuracy of a guess at chance level over the same number of predictions.
STANDARD_ERRORS = 5
# Batch normalisation's statistics are recomputed on RECALIBRATION_BATCHES
# x RECALIBRATION_BATCH training images, and the test images are called in
# batches of TEST_BATCH unless the run says: a few large eager calls cost
# less than many small ones for the same images.
RECALIBRATION_BATCHES = 2
RECALIBRATION_BATCH = 160
TEST_BATCH = 256
TEST_IMAGES = 256
METHODS = [name for name in methods.names() if name != "selfie"]


def test_every_method_but_selfie_has_a_run():
    assert sorted(RUNS) == sorted(METHODS)


@pytest.mark.parametrize("method", METHODS)
def test_short_pretraining_beats_chance_on_cifar10(
    method, tfds_data_dir, tmp_path
):
    run = RUNS[method]
    images = data.load_tfds("cifar10", "train[:5000]", data_dir=tfds_data_dir)
    result = training.run_pretraining(
        images,
        tmp_path,
        preset="tiny",
        method=method,
        config=run.get("config", {}),
        epochs=1,
        steps_per_epoch=run["steps"],
        batch_size=run.get("batch_size", 32),
        optimizer=run.get("optimizer"),
        learning_rate=run.get("learning_rate"),
        warmup_epochs=0,
        checkpoint=False,
        verbose=0,
    )
    test = _recalibrated_test_batches(
        result.pretrainer, images, run, tfds_data_dir
    )
    if isinstance(result.pretrainer, ReconstructionPretrainer):
        return _check_reconstruction(method, result.pretrainer, test)
    if isinstance(result.pretrainer, ColorizationPretrainer):
        return _check_colorization(method, result.pretrainer, test)
    accuracy, total = _held_out_accuracy(result.pretrainer, test)
    if isinstance(result.pretrainer, ClassificationPretrainer):
        baseline = chance = result.pretrainer.chance_accuracy()
    else:
        # Contrastive (SimCLR): the positive among the 2B - 1 other views
        # of a test batch of B = 64, chance 1/127. An untrained P already
        # beats chance (two views of an image share its colours), so the
        # baseline is also the same model untrained, measured here alike.
        chance = result.pretrainer.chance_accuracy(
            run.get("test_batch", TEST_BATCH)
        )
        untrained = training.build_pretrainer(
            "tiny", method, **run.get("config", {}), seed=0
        )
        baseline = max(chance, _held_out_accuracy(
            untrained, _recalibrated_test_batches(
                untrained, images, run, tfds_data_dir
            )
        )[0])
    # E.g. rotation: 1,024 predictions (4 per image), chance 0.25, standard
    # error 0.0135: the accuracy must exceed 0.318.
    threshold = baseline + STANDARD_ERRORS * math.sqrt(
        baseline * (1 - baseline) / total
    )
    assert accuracy > threshold, (
        method, accuracy, "baseline", baseline, "chance", chance, total
    )


def _recalibrated_test_batches(pretrainer, images, run, tfds_data_dir):
    """Recomputes `pretrainer`'s batch-norm statistics on
    `RECALIBRATION_BATCHES` training batches; returns the run's test images
    (`TEST_IMAGES` unless it says) in its test batches."""
    evaluation.recalibrate_batch_norm(
        pretrainer,
        data.make_dataset(images, RECALIBRATION_BATCH, seed=1),
        num_batches=RECALIBRATION_BATCHES,
    )
    return data.make_dataset(
        data.load_tfds(
            "cifar10", f"test[:{run.get('test_images', TEST_IMAGES)}]",
            data_dir=tfds_data_dir,
        ),
        run.get("test_batch", TEST_BATCH), training=False,
    )


def _held_out_accuracy(pretrainer, test):
    """The pretext accuracy on the test batches (the share of `"logits"`
    rows whose best column is the `"labels"` one) and the number of
    predictions."""
    correct = total = 0
    for batch in test:
        outputs = pretrainer(batch, training=False)
        predicted = np.argmax(outputs["logits"], axis=-1)
        correct += int(np.sum(predicted == np.asarray(outputs["labels"])))
        total += len(predicted)
    return correct / total, total


def _check_reconstruction(method, pretrainer, test):
    """A reconstruction method's held-out error must be clearly below that
    of predicting what P saw (the hole filled with the fill colour, the
    interpolated small image)."""
    differences = []
    for batch in test:
        outputs = pretrainer(batch, training=False)
        errors = [
            masked_squared_error(
                outputs["targets"], outputs[key], outputs.get("mask")
            )
            for key in ("reconstruction", "inputs")
        ]
        differences.append(np.asarray(errors[0]) - np.asarray(errors[1]))
    _check_paired_differences(
        method, differences,
        "reconstruction minus baseline (P's input) squared error",
    )


def _check_colorization(method, pretrainer, test):
    """Colorization's held-out loss (the rebalanced cross-entropy of every
    cell's colour) must be clearly below that of the untrained model,
    which predicts the smoothed prior in every cell (its output layer
    starts at zero on the log of the prior)."""
    prior_logits = np.log(np.maximum(pretrainer.smoothed_prior, 1e-12))
    differences = []
    for batch in test:
        outputs = pretrainer(batch, training=False)
        targets = outputs["targets"]
        losses = [
            np.asarray(pixel_crossentropy(
                targets, logits, outputs["pixel_weights"]
            ))
            for logits in (outputs["logits"], np.broadcast_to(
                prior_logits.astype("float32"), targets.shape
            ))
        ]
        differences.append(losses[0] - losses[1])
    _check_paired_differences(
        method, differences, "loss minus the untrained model's (the prior)"
    )


def _check_paired_differences(method, differences, what):
    """Paired over the test images, the mean difference of the trained
    model's error and the baseline's must be below 0 by `STANDARD_ERRORS`
    standard errors."""
    differences = np.concatenate(differences)
    mean = differences.mean()
    standard_error = differences.std(ddof=1) / math.sqrt(len(differences))
    assert mean + STANDARD_ERRORS * standard_error < 0, (
        method, what, mean, standard_error, len(differences),
    )
