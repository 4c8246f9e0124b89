"""Each pretext task learns on the real CIFAR-10 in a short run.

One `training.run_pretraining` per method (the `tiny` preset's width and
stem, the steps in `RUNS`), then the pretext accuracy on held-out test
images in inference mode, which must be clearly above the task's chance
level. P is `seeded_run.shallow_patch_network`, one bottleneck block per
stage, but for SimCLR (see `RUNS`): what is checked here is that each task
learns from real images, which any P shows, and its steps and trace cost
a third of the full P's. The full P learns the same way in Selfie's
`cifar10_test.py` and in `examples/compare_methods.py` (docs/ZOO.md).
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
images. Where `RUNS` gives two figures they are of seeds 0 and 1
(`run_pretraining`'s `seed`, and the shallow P's initial weights), one
figure is of seed 0.
"""

import math

import keras
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
from conftest import TINY_BACKBONE
from seeded_run import shallow_patch_network

# Method -> its run: arguments beside the tiny backbone (`config`), steps
# of batch `batch_size`, the optimizer (the preset's unless given), the
# learning rate and the held-out test images (`TEST_IMAGES` unless given),
# called in batches of `test_batch` (`TEST_BATCH` unless given), and
# `full_p=True` where the run needs the preset's full P.
# A method added to the registry adds its entry.
RUNS = {
    # 1,024 predictions, chance 0.25, threshold 0.318: 0.461 and 0.440.
    "rotation": dict(steps=60, batch_size=16, learning_rate=0.05),
    # The classifier that takes unlabeled images: each copy among the 16
    # images of its group (chance 1/16; the test batches of 256 hold 16;
    # threshold 0.116): 0.281 and 0.240.
    "exemplar": dict(
        config={"classifier": "batch", "num_exemplars": 16,
                "transformations_per_image": 2},
        steps=20, batch_size=16, learning_rate=0.05,
    ),
    # All 8 pairs of every image, on 2,048 test images (16,384 predictions,
    # chance 1/8, must exceed 0.138): one random pair per image learns too
    # slowly on 8x8 patches for a short run, and AdamW climbs faster than
    # SGD here. The slowest run of the zoo: 80 steps reach 0.185 and 0.184
    # (150 steps: 0.217; the full P needed 150 steps for 0.150). More test
    # images, cheap at inference, narrow the threshold.
    "relative_patch_location": dict(
        config={"all_neighbors": True}, optimizer="adamw",
        steps=80, batch_size=32, learning_rate=0.003, test_images=2048,
    ),
    # Crops and flips only: with the paper's colour jitter and colour drop
    # 30 steps do not yet beat an untrained P (its baseline, below), which
    # matches two views by their colours (0.045 against chance 1/127).
    # Its test batches of 64 set its chance, 1/127. The one run on the full
    # P (`full_p`): an untrained shallow P already matches 0.414 of the
    # views by their low-level statistics, and 20 and 40 steps reach only
    # 0.520 and 0.488 (threshold 0.523); 40 steps with the colour jitter
    # and drop, 0.068 against the untrained model's 0.055. On 1,024 test
    # images (2,048 predictions): 0.215 against a threshold of 0.152 (the
    # untrained model's 0.116), and 0.170 with one thread per TensorFlow op
    # (another order of float sums, another run); on 256 those were 0.238
    # and 0.189 against 0.208.
    "simclr": dict(
        config={"color_strength": 0, "grayscale_probability": 0},
        steps=20, batch_size=32, learning_rate=0.1, test_batch=64,
        test_images=1024, full_p=True,
    ),
    # 2x2 puzzles of 13x13 tiles, 10 permutations (chance 0.1): 40 steps
    # reach 0.387 and 0.391 (threshold 0.194). With the full P, 30 steps
    # reached 0.16 and 0.33, and a hidden layer without batch
    # normalisation 0.13 and 0.08 in 40; the default 3x3 grid of 8x8 tiles
    # needed about 150 steps.
    "jigsaw": dict(
        steps=40, batch_size=64, learning_rate=0.05,
        config={"grid_size": 2, "num_permutations": 10},
    ),
    # Held-out error of the hole below filling it with the mean colour:
    # mean difference -0.0129 and -0.0133, bound (mean + 5 standard errors)
    # -0.0087 and -0.0088.
    "context_encoder": dict(
        config={"decoder_filters": 16}, steps=60, batch_size=32,
        learning_rate=0.1,
    ),
    # Held-out error below that of the bicubic-upsampled 8x8 copy; the L2
    # gradients of so small a residual need AdamW's scaling. Difference
    # -5.1e-4 and -4.5e-4, bound -3.6e-4 and -3.3e-4.
    "super_resolution": dict(
        config={"decoder_filters": 16}, steps=60, batch_size=32,
        optimizer="adamw", learning_rate=0.01,
    ),
    # The paper's rebalanced classification over 229 ab bins: held-out loss
    # below the untrained model's, which predicts the smoothed CIFAR-10
    # prior in every cell, by 0.547 and 0.569 (bound -0.151 and -0.158).
    # So short a run learns little more than the rebalanced colour
    # distribution that ignores the picture (with the full P: 4.01 against
    # the prior's 4.52, and 4.07 for that distribution fitted on 2,048
    # training images).
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
        config=_config(run),
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
            "tiny", method, **_config(run), seed=0
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


def _config(run):
    """The run's method arguments and a shallow P (unless `full_p`), its
    initial weights fixed by seed 0 as `run_pretraining`'s seed fixes the
    others'."""
    if run.get("full_p"):
        return run.get("config", {})
    keras.utils.set_random_seed(0)
    backbone = shallow_patch_network(
        TINY_BACKBONE["stem"], TINY_BACKBONE["width"]
    )
    return {**run.get("config", {}), "backbone": backbone}


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
