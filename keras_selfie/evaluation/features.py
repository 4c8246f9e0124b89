"""Frozen features of Selfie's patch network `P` on whole images."""

import keras
import numpy as np
import tensorflow as tf

from keras_selfie.models.pretrainer import Pretrainer
from keras_selfie.models.pretrainer import check_pretrainer
from keras_selfie.models.selfie_pretrainer import SelfiePretrainer
from keras_selfie.utils.images import scale_images
from keras_selfie.utils.validation import check_image_dtype
from keras_selfie.utils.validation import check_positive_int


def get_patch_network(pretrainer_or_patch_network, name="pretrainer"):
    """Returns the backbone `P` of a pretrainer, or a network as is."""
    value = check_pretrainer(
        pretrainer_or_patch_network, name, or_network=True
    )
    if isinstance(value, Pretrainer):
        return value.feature_extractor()
    return value


def labeled_batches(dataset, batch_size=256, name="dataset"):
    """Returns a batched `tf.data.Dataset` of `(images, labels)`.

    Accepts a `(images, labels)` pair of arrays, an unbatched dataset of
    `(image, label)` pairs (batched here) or a batched one (used as is).
    """
    check_positive_int("batch_size", batch_size)
    if isinstance(dataset, (tuple, list)) and len(dataset) == 2:
        images, labels = (np.asarray(x) for x in dataset)
        if len(images) != len(labels):
            raise ValueError(
                f"Argument `{name}` must hold as many labels as images. "
                f"Received: {len(images)} images and {len(labels)} labels"
            )
        dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(
            f"Argument `{name}` must be a `tf.data.Dataset` of "
            "`(image, label)` pairs (batched or not) or an "
            f"`(images, labels)` pair of arrays. Received: {name}={dataset!r}"
        )
    spec = dataset.element_spec
    if not (
        isinstance(spec, tuple)
        and len(spec) == 2
        and all(isinstance(s, tf.TensorSpec) for s in spec)
    ):
        raise ValueError(
            f"Argument `{name}` must yield `(image, label)` pairs; evaluation "
            "needs labels (`data.load_tfds(..., labeled=True)`). "
            f"Received element_spec={spec!r}"
        )
    rank = spec[0].shape.rank
    if rank == 3:
        dataset = dataset.batch(batch_size)
    elif rank not in (4, None):
        raise ValueError(
            f"Argument `{name}` must yield images of rank 3 (unbatched) or "
            f"4 (batched). Received element_spec={spec!r}"
        )
    check_image_dtype(f"The images of `{name}`", spec[0].dtype)
    return dataset


def extract_features(pretrainer_or_patch_network, dataset, batch_size=256):
    """Computes the frozen features of `P` on whole images, with labels.

    The feature of an image is the output of the patch network `P`
    (ResNet-50 stages 1-3 + global average pooling) run on the full image,
    not on patches: `P` accepts any spatial size, and the full image is what
    fine-tuning feeds the same layers. `P` runs in inference mode (batch
    normalisation uses its moving statistics) and no weight changes. uint8
    images are scaled to `[0, 1]` exactly as `SelfiePretrainer` does; float
    images are used as they are.

    Args:
        pretrainer_or_patch_network: a `SelfiePretrainer`, or its
            `patch_network`.
        dataset: `tf.data.Dataset` of `(image, label)` pairs, batched or not
            (unbatched ones are batched by `batch_size`), or an
            `(images, labels)` pair of arrays. Use it without augmentation.
        batch_size: int. Batch size for unbatched inputs.

    Returns:
        `(features, labels)`: float32 NumPy arrays `(num_images, d)` and the
        labels as a 1-D NumPy array, in the order of `dataset`.

    Example:

    ```python
    test = data.load_tfds("cifar10", split="test", labeled=True)
    features, labels = extract_features(pretrainer, test)
    ```
    """
    network = get_patch_network(
        pretrainer_or_patch_network, "pretrainer_or_patch_network"
    )
    dataset = labeled_batches(dataset, batch_size)
    num_channels = network.input_shape[-1]
    features, labels = [], []
    for images, batch_labels in dataset:
        if images.shape[-1] != num_channels:
            raise ValueError(
                "The images of `dataset` must have the patch network's "
                f"{num_channels} channels. Received shape="
                f"{tuple(images.shape)}"
            )
        images = scale_images(images, network.compute_dtype)
        output = network(images, training=False)
        features.append(keras.ops.convert_to_numpy(output).astype("float32"))
        labels.append(np.asarray(batch_labels).reshape(-1))
    if not features:
        raise ValueError("Argument `dataset` is empty: it yielded no batch.")
    features = np.concatenate(features)
    if not np.all(np.isfinite(features)):
        raise ValueError(
            "The patch network's features hold NaN or infinite values for "
            f"{int(np.sum(~np.all(np.isfinite(features), axis=1)))} of "
            f"{len(features)} images: its weights or batch-norm statistics "
            "diverged during pretraining (e.g. a learning rate too high; "
            "`keras.callbacks.TerminateOnNaN` stops such a run)."
        )
    return features, np.concatenate(labels)


POOLINGS = ("mean", "concat")


class _PatchView(keras.layers.Layer):
    """`P` on each patch of the grid, as in pretraining, then pooled."""

    def __init__(self, pretrainer, pooling, **kwargs):
        super().__init__(**kwargs)
        self.pretrainer = pretrainer
        self.pooling = pooling

    def call(self, images, training=False):
        features = self.pretrainer.patch_features(images, training=training)
        if self.pooling == "mean":
            return keras.ops.mean(features, axis=1)
        return keras.ops.reshape(
            features, (-1, features.shape[1] * features.shape[2])
        )


def patch_feature_network(pretrainer, pooling="mean"):
    """A network computing `P`'s features the way pretraining sees images.

    `extract_features` runs `P` on the whole image, as fine-tuning does.
    This model cuts the image into the pretrainer's patch grid, runs `P` on
    each patch alone (the input size it was trained on), and pools the `N`
    patch features: their mean (`d` values) or their concatenation in grid
    order (`N * d` values, which keeps where each patch was). Comparing the
    two views tells whether what `P` learned on patches carries over to
    whole images.

    Args:
        pretrainer: a `SelfiePretrainer`.
        pooling: `"mean"` or `"concat"`.

    Returns:
        A `keras.Model` from images to features, which `extract_features`,
        `knn_accuracy` and `linear_probe` take in place of a pretrainer.

    Example:

    ```python
    view = evaluation.patch_feature_network(pretrainer, "concat")
    features, labels = evaluation.extract_features(view, test)
    ```
    """
    check_pretrainer(pretrainer, cls=SelfiePretrainer)
    if pooling not in POOLINGS:
        raise ValueError(
            f"Argument `pooling` must be one of {list(POOLINGS)}. "
            f"Received: pooling={pooling!r}"
        )
    inputs = keras.Input((*pretrainer.image_size, pretrainer.num_channels))
    outputs = _PatchView(pretrainer, pooling, name=f"patch_{pooling}")(inputs)
    return keras.Model(inputs, outputs, name=f"patch_{pooling}_features")
