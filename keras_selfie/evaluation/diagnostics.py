"""What a pretrainer learned: does it use the context, are its features alive.

- `context_gain`: patch accuracy with each image's own visible patches
  minus patch accuracy when the visible patches come from another image
  (the candidates unchanged). About 0 for a model that ignores the context.
- `feature_health`: how much `P`'s features vary across images (effective
  rank, spread relative to the mean, weight of the dominant direction).
  Collapsed features show before anyone fine-tunes.
"""

import numpy as np
import tensorflow as tf
from keras import ops

from keras_selfie.losses.distractor_softmax_loss import DISTRACTORS
from keras_selfie.losses.distractor_softmax_loss import distractor_labels
from keras_selfie.utils.validation import check_choice
from keras_selfie.utils.validation import check_positive_int


def _image_batches(dataset, batch_size):
    """Batches of images from an array or a dataset of images or pairs."""
    if isinstance(dataset, np.ndarray):
        dataset = tf.data.Dataset.from_tensor_slices(dataset)
    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(
            "Argument `dataset` must be a `tf.data.Dataset` of images or of "
            "`(image, label)` pairs (batched or not), or an array of images. "
            f"Received: dataset={type(dataset).__name__}"
        )
    if isinstance(dataset.element_spec, tuple):
        dataset = dataset.map(lambda images, *_: images)
    if dataset.element_spec.shape.rank == 3:
        dataset = dataset.batch(batch_size)
    return dataset


def context_gain(
    pretrainer, dataset, distractors=None, batch_size=256, seed=0
):
    """Measures how much a pretrainer's predictions use the visible patches.

    For every batch of images, one encoder/decoder split per image is drawn
    (NumPy, from `seed`: the same splits for every model); the pretrainer
    scores the decoder patches twice in inference mode:

    - with each image's own visible patches as the context (the pretext
      task's patch accuracy);
    - with the visible patches of the previous image of the batch (at the same
      grid positions), the queried positions and the candidate patches
      unchanged.

    The context gain is the difference of the two patch accuracies. With
    the paper's score `<u + PE(j), h_k>` and in-image distractors, `u` only
    adds a bias per candidate, so the gain stays near 0 (docs/RESULTS.md);
    a model that reads its context scores clearly above 0.

    Args:
        pretrainer: a `SelfiePretrainer` (any model with its
            `context_features`, `target_features`, `predict_queries` and
            `score` methods).
        dataset: images, as an array or a `tf.data.Dataset` of images or of
            `(image, label)` pairs, batched or not. Batches of one image
            are skipped (no other image to take the context from).
        distractors: `None` (the pretrainer's own candidates), `"image"`
            (the `M` decoder patches of the image) or `"batch"` (those of
            every image of the batch).
        batch_size: int. Batch size for unbatched data.
        seed: int. Seed of the splits.

    Returns:
        A dict with `"patch_accuracy"`, `"shuffled_context_patch_accuracy"`,
        `"context_gain"` (their difference, in accuracy units: 0.1 is 10
        points), `"distractors"` and `"num_predictions"`.

    Example:

    ```python
    test = data.load_tfds("cifar10", split="test[:1000]")
    evaluation.context_gain(pretrainer, test)["context_gain"]
    ```
    """
    distractors = check_choice(
        "distractors",
        pretrainer.distractors if distractors is None else distractors,
        DISTRACTORS,
    )
    check_positive_int("batch_size", batch_size)
    rng = np.random.RandomState(seed)
    own = shuffled = total = 0
    for images in _image_batches(dataset, batch_size):
        count = int(images.shape[0])
        if count < 2:
            continue
        order = np.argsort(rng.uniform(size=(count, pretrainer.num_patches)))
        encoder = ops.convert_to_tensor(
            order[:, : pretrainer.num_encoder_patches], "int32"
        )
        decoder = ops.convert_to_tensor(
            order[:, pretrainer.num_encoder_patches :], "int32"
        )
        targets = ops.cast(
            pretrainer.target_features(images, decoder, training=False),
            "float32",
        )
        labels = ops.convert_to_numpy(distractor_labels(targets, distractors))

        def hits(context):
            queries = pretrainer.predict_queries(
                context, encoder, decoder, training=False
            )
            logits = pretrainer.score(
                ops.cast(queries, "float32"), targets, distractors
            )
            predicted = np.argmax(ops.convert_to_numpy(logits), axis=-1)
            return int(np.sum(predicted == labels))

        own += hits(pretrainer.context_features(images, decoder, False))
        # Image b reads the visible patches of image b - 1 (at its own
        # encoder positions, the rest of image b - 1 blanked out as
        # image b's decoder positions are); its candidates stay its own.
        shuffled += hits(
            pretrainer.context_features(
                ops.roll(images, 1, axis=0), decoder, False
            )
        )
        total += labels.size
    if not total:
        raise ValueError(
            "Argument `dataset` yielded no batch of 2 or more images."
        )
    return {
        "patch_accuracy": own / total,
        "shuffled_context_patch_accuracy": shuffled / total,
        "context_gain": (own - shuffled) / total,
        "distractors": distractors,
        "num_predictions": total,
    }


def feature_health(features):
    """Summarises how much features vary across images.

    Args:
        features: array `(num_images, d)`, e.g. from `extract_features`.

    Returns:
        A dict of floats:
        - `"effective_rank"`: `exp(entropy)` of the normalised singular
          values of the centred features (Roy & Vetterli, 2007): from 1 (all
          images on one line) to `d` (variance spread evenly).
        - `"relative_std"`: the mean over dimensions of the standard
          deviation across images, divided by the mean absolute feature
          value. Small when every image has nearly the same feature vector
          (collapse onto a shared direction).
        - `"top_direction_share"`: the share of the features' total second
          moment (not centred) along their first singular direction; near
          1 when one shared direction dominates.

    Example:

    ```python
    features, _ = evaluation.extract_features(pretrainer, test)
    evaluation.feature_health(features)["effective_rank"]
    ```
    """
    features = np.asarray(features, dtype="float64")
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(
            "Argument `features` must be a 2-D array (num_images, d) with at "
            f"least 2 images. Received shape={features.shape}"
        )
    if not np.all(np.isfinite(features)):
        raise ValueError("Argument `features` holds NaN or infinite values.")
    centred = features - features.mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    if singular.sum() > 0:
        p = singular / singular.sum()
        p = p[p > 0]
        effective_rank = float(np.exp(-np.sum(p * np.log(p))))
    else:
        effective_rank = 0.0
    scale = np.abs(features).mean()
    relative_std = float(features.std(axis=0).mean() / scale) if scale else 0.0
    raw = np.linalg.svd(features, compute_uv=False) ** 2
    top_share = float(raw[0] / raw.sum()) if raw.sum() else 0.0
    return {
        "effective_rank": effective_rank,
        "relative_std": relative_std,
        "top_direction_share": top_share,
    }
