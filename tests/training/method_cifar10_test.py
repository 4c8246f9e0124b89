"""Each pretext task learns on the real CIFAR-10 in a short run.

One `training.run_pretraining` per method (the `tiny` preset's backbone,
the steps in `RUNS`), then the pretext accuracy on held-out test images
in inference mode, which must be clearly above the task's chance level.
After so few steps batch normalisation's moving averages (momentum 0.99)
are still near their initial values, and inference with them sits at
chance whatever the weights learned; they are recomputed first on 10
training batches (`evaluation.recalibrate_batch_norm`, as the Table 1
protocol does before testing). Selfie's own run is `cifar10_test.py`.
"""

import math

import numpy as np
import pytest

from keras_selfie import data
from keras_selfie import evaluation
from keras_selfie import methods
from keras_selfie import training
from keras_selfie.losses import masked_squared_error
from keras_selfie.models import ClassificationPretrainer

# Method -> its run: arguments beside the tiny backbone (`config`), steps
# of batch `batch_size` and the learning rate. A method added to the registry adds its entry.
RUNS = {
    "rotation": dict(steps=60, batch_size=16, learning_rate=0.05),
    # The classifier that takes unlabeled images: each copy among the 16
    # images of its group (chance 1/16; the test batches of 64 hold 4).
    "exemplar": dict(
        config={"classifier": "batch", "num_exemplars": 16,
                "transformations_per_image": 2},
        steps=20, batch_size=16, learning_rate=0.05,
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
}
# How far above chance the test accuracy must be: in standard errors of the
# accuracy of a guess at chance level over the same number of predictions.
STANDARD_ERRORS = 5
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
    pretrainer = result.pretrainer
    evaluation.recalibrate_batch_norm(
        pretrainer,
        data.make_dataset(images, run.get("batch_size", 32), seed=1),
        num_batches=10,
    )
    test = data.make_dataset(
        data.load_tfds("cifar10", "test[:256]", data_dir=tfds_data_dir),
        64, training=False,
    )
    if not isinstance(pretrainer, ClassificationPretrainer):
        return _check_reconstruction(method, pretrainer, test)
    correct = total = 0
    for batch in test:
        outputs = pretrainer(batch, training=False)
        predicted = np.argmax(outputs["logits"], axis=-1)
        correct += int(np.sum(predicted == np.asarray(outputs["labels"])))
        total += len(predicted)
    accuracy, chance = correct / total, pretrainer.chance_accuracy()
    # E.g. rotation: 1,024 predictions (4 per image), chance 0.25, standard
    # error 0.0135: the accuracy must exceed 0.318.
    threshold = chance + STANDARD_ERRORS * math.sqrt(
        chance * (1 - chance) / total
    )
    assert accuracy > threshold, (method, accuracy, chance, total)


def _check_reconstruction(method, pretrainer, test):
    """A reconstruction method's held-out error must be clearly below that
    of predicting what P saw (the hole filled with the fill colour, the
    interpolated small image): paired over the test images, the mean
    difference must be below 0 by `STANDARD_ERRORS` standard errors."""
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
    differences = np.concatenate(differences)
    mean = differences.mean()
    standard_error = differences.std(ddof=1) / math.sqrt(len(differences))
    assert mean + STANDARD_ERRORS * standard_error < 0, (
        method, "reconstruction minus baseline (P's input) squared error",
        mean, standard_error, len(differences),
    )
