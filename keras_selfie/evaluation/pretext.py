"""A pretext task's own figure on held-out images, beside what it must beat.

Every method reports its task in its own terms (`METRIC_DIRECTIONS`):
Selfie its patch accuracy, the classification tasks (rotation, relative
patch location, exemplar, jigsaw) their pretext accuracy, SimCLR its
contrastive accuracy, the reconstruction tasks (context encoder,
super-resolution) their reconstruction error, colorization its ab error.
A figure means something only beside its reference: the accuracy of a
uniform guess (chance), or the error of an answer that needs no learning
(`Pretrainer.trivial_baseline`: a reconstruction's input handed back,
colorization's one colour everywhere). `pretext_evaluation` gives both.
"""

import numpy as np

from keras_selfie.models.pretrainer import ClassificationPretrainer
from keras_selfie.models.pretrainer import check_pretrainer


def pretext_metric(pretrainer):
    """The name of the figure a pretrainer's task is judged by: the first
    value of its `METRIC_DIRECTIONS` other than the loss (the loss for a
    task that reports nothing else)."""
    directions = type(check_pretrainer(pretrainer)).METRIC_DIRECTIONS
    return next((name for name in directions if name != "loss"), "loss")


def chance_level(pretrainer, batch_size):
    """The pretext accuracy of a uniform guess, or `None` where the task's
    figure is no accuracy (a reconstruction error, a loss).

    Args:
        pretrainer: a `keras_selfie.Pretrainer`.
        batch_size: int, the batch the figure is measured on (Selfie's
            candidates from the whole batch and SimCLR's views depend on
            it; the other tasks' do not).
    """
    check_pretrainer(pretrainer)
    if hasattr(pretrainer, "chance_patch_accuracy"):  # Selfie
        return float(pretrainer.chance_patch_accuracy(batch_size))
    if isinstance(pretrainer, ClassificationPretrainer):
        return float(pretrainer.chance_accuracy())
    if hasattr(pretrainer, "chance_accuracy"):  # contrastive (SimCLR)
        return float(pretrainer.chance_accuracy(batch_size))
    return None


def pretext_evaluation(pretrainer, batches):
    """The task's loss and figure on held-out batches, inference mode.

    The batches are those the task would train on, unaugmented (e.g.
    `data.make_dataset(test_images, batch_size, training=False)`); use the
    training batch size where the chance level depends on it. After a
    short run, batch normalisation's moving averages are still near their
    initial values: recompute them first (`recalibrate_batch_norm` on a
    copy of the pretrainer) for a figure of the weights.

    Args:
        pretrainer: a `keras_selfie.Pretrainer` (compiled or not).
        batches: an iterable of image batches (or `(images, labels)`
            tuples, labels ignored).

    Returns:
        A dict: `metric` (`pretext_metric`), `value` (its mean over the
        examples), `direction` (`"max"` or `"min"`), `loss` (the pretext
        loss, mean over the batches), `baseline` and `baseline_kind`
        (`"chance"`: `chance_level` at the first batch's size; `"trivial"`:
        the figure of the task's answer that needs no learning,
        `Pretrainer.trivial_baseline`, e.g. a reconstruction's input
        handed back; `None` and `None` otherwise), `trivial_answer` (that
        answer's name, or `None`), `batches` and `batch_size`.

    Example:

    ```python
    test = data.make_dataset(data.load_tfds("cifar10", "test[:512]"), 64,
                             training=False)
    result = evaluation.pretext_evaluation(pretrainer, test)
    print(result["metric"], result["value"], result["baseline"])
    ```
    """
    check_pretrainer(pretrainer)
    metric = pretext_metric(pretrainer)
    for tracker in pretrainer.metrics:
        tracker.reset_state()
    losses, trivial = [], []
    answer = None
    batch_size = None
    for batch in batches:
        images = batch[0] if isinstance(batch, tuple) else batch
        batch_size = batch_size or int(images.shape[0])
        outputs = pretrainer(images, training=False)
        pretrainer.update_task_metrics(outputs)
        losses.append(float(pretrainer.task_loss(outputs)))
        trivial_baseline = pretrainer.trivial_baseline(outputs)
        if trivial_baseline is not None:
            answer, figures = trivial_baseline
            trivial.append(np.asarray(figures))
    if not losses:
        raise ValueError("Argument `batches` is empty: it yielded no batch.")
    values = {t.name: float(t.result()) for t in pretrainer.metrics}
    values["loss"] = float(np.mean(losses))
    if trivial:
        baseline, kind = float(np.concatenate(trivial).mean()), "trivial"
    else:
        baseline = chance_level(pretrainer, batch_size)
        kind = None if baseline is None else "chance"
    return {
        "metric": metric,
        "value": values[metric],
        "direction": type(pretrainer).METRIC_DIRECTIONS[metric],
        "loss": values["loss"],
        "baseline": baseline,
        "baseline_kind": kind,
        "trivial_answer": answer,
        "batches": len(losses),
        "batch_size": batch_size,
    }
