"""Images for a training run, named on a command line."""

import os

import tensorflow as tf

from keras_selfie.data.augment import pretraining_augmentation
from keras_selfie.data.pipeline import distributed_dataset
from keras_selfie.data.pipeline import make_dataset
from keras_selfie.data.sources import load_image_folder
from keras_selfie.data.sources import load_tfds
from keras_selfie.data.subsets import labeled_subset
from keras_selfie.utils.validation import check_non_negative
from keras_selfie.utils.validation import check_positive_int


def load_images(
    dataset=None,
    image_folder=None,
    split="train",
    image_size=None,
    labeled=False,
    data_dir=None,
):
    """Loads images from a TFDS dataset or from a folder of image files.

    Exactly one of `dataset` and `image_folder` is given.

    Args:
        dataset: a TFDS dataset name, e.g. `"cifar10"` (see
            `keras_selfie.data.load_tfds`).
        image_folder: a folder of image files: the images themselves
            (unlabeled) or one subfolder per class (labeled); see
            `keras_selfie.data.load_image_folder`.
        split: the TFDS split (slices included, e.g. `"train[:10%]"`);
            ignored for a folder.
        image_size: int, the size folder images are brought to
            (center-cropped); required for a folder, ignored for TFDS.
        labeled: bool, whether to return `(image, label)` pairs.
        data_dir: the TFDS data folder (`None`: TFDS's default).

    Returns:
        An unbatched `tf.data.Dataset` of uint8 images or `(image, label)`.
    """
    if (dataset is None) == (image_folder is None):
        raise ValueError(
            "Pass exactly one of `dataset` (a TFDS name) and `image_folder`. "
            f"Received: dataset={dataset!r}, image_folder={image_folder!r}"
        )
    if dataset is not None:
        return load_tfds(dataset, split, labeled=labeled, data_dir=data_dir)
    if image_size is None:
        raise ValueError(
            "Argument `image_size` is required with `image_folder`. "
            "Received: image_size=None"
        )
    images = load_image_folder(image_folder, image_size, labeled="infer")
    has_labels = images.class_names is not None
    if labeled and not has_labels:
        raise ValueError(
            f"The folder {os.fspath(image_folder)!r} holds its images "
            "directly, so it has no labels; labeled data needs one "
            "subfolder per class (folder/<class_name>/image.png)."
        )
    if not labeled and has_labels:
        images = images.map(lambda image, label: image)
    return images


def labeled_splits(
    dataset=None,
    image_folder=None,
    split="train",
    test_split="test",
    image_size=None,
    data_dir=None,
    test_fraction=0.2,
):
    """Labeled training and test images from TFDS or from a class folder.

    From TFDS, the two splits named; from a folder (one subfolder per
    class), a class-stratified `test_fraction` of its images (always the
    same ones: `data.labeled_subset(..., seed=0)`) is the test set and the
    rest the training set.

    Args:
        dataset, image_folder, image_size, data_dir: as in `load_images`.
        split: the TFDS training split.
        test_split: the TFDS test split.
        test_fraction: float in (0, 1), the share of a folder held out.

    Returns:
        `(train, test, num_classes)`: unbatched datasets of `(image, label)`
        and the number of classes.
    """
    train = load_images(dataset, image_folder, split, image_size,
                        labeled=True, data_dir=data_dir)
    if image_folder is None:
        import tensorflow_datasets as tfds

        test = load_images(dataset, None, test_split, labeled=True,
                           data_dir=data_dir)
        label = tfds.builder(dataset, data_dir=data_dir).info.features[
            "label"
        ]
        return train, test, label.num_classes
    classes = len(train.class_names)
    test, train = labeled_subset(train, test_fraction, seed=0)
    return train, test, classes


def num_batches(images, batch_size):
    """Whole batches of `batch_size` in one pass over `images`.

    Raises:
        ValueError: if the number of images is unknown or infinite, or
            smaller than `batch_size`.
    """
    count = int(images.cardinality())
    if count < 0:
        raise ValueError(
            "The number of images is unknown, so one pass cannot be sized; "
            "pass the number of steps per epoch."
        )
    return count // check_batch_fits(images, batch_size)


def check_batch_fits(images, batch_size):
    """Checks that one batch of `batch_size` holds no image twice.

    Returns:
        `batch_size`, an int > 0.

    Raises:
        ValueError: if `batch_size` is not an int > 0, or `images` has a
            known number of images smaller than `batch_size`.
    """
    batch_size = check_positive_int("batch_size", batch_size)
    count = int(images.cardinality())
    if 0 <= count < batch_size:
        raise ValueError(
            f"Argument `batch_size` must not exceed the number of images "
            f"({count}). Received: batch_size={batch_size}"
        )
    return batch_size


def pretraining_batches(
    images, batch_size, seed=None, skip_batches=0, strategy=None
):
    """The endless, augmented training batches of a pretraining run.

    Shuffled, augmented with the paper's pad-and-crop and flip
    (`data.pretraining_augmentation()`), batched with `drop_remainder` and
    repeated; with a seed the sequence of batches is always the same, so
    `skip_batches` (the steps a resumed run has done already, e.g.
    `backup_epoch(...) * steps_per_epoch`) continues it where an
    uninterrupted run would be. Skipping runs the pipeline over the
    skipped batches, a small fraction of the training time they stand for.

    Args:
        images: unbatched images or `(image, label)` pairs.
        batch_size: int, the global batch size.
        seed: int or `None`, seed of the shuffle and augmentation.
        skip_batches: int >= 0, batches to leave out at the start.
        strategy: optional `tf.distribute.Strategy`. Under
            `MultiWorkerMirroredStrategy` each worker reads and augments
            its own shard (`data.distributed_dataset`); the shards restart
            from their first batch on resume (`skip_batches` must be 0).

    Returns:
        A batched `tf.data.Dataset`, or a `tf.distribute.DistributedDataset`
        for several workers.

    Raises:
        ValueError: if `batch_size` exceeds the known number of images, or
            `skip_batches` is not an int >= 0 (or not 0 for several
            workers).
    """
    check_non_negative("skip_batches", skip_batches, integer=True)
    # A repeated pipeline would fill a batch larger than the data with
    # copies of its images, which then serve as each other's distractors.
    check_batch_fits(images, batch_size)
    options = dict(
        augment=pretraining_augmentation(), repeat=True, seed=seed
    )
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        if skip_batches:
            raise ValueError(
                "Argument `skip_batches` must be 0 under "
                "`MultiWorkerMirroredStrategy`: the workers' sharded "
                "pipelines cannot skip batches. Received: "
                f"skip_batches={skip_batches}"
            )
        # Keras' fit cannot all-reduce a plain uint8 dataset across workers
        # (see `data.distributed_dataset`); each worker reads its shard.
        return distributed_dataset(
            strategy, lambda context: images, batch_size, **options
        )
    batches = make_dataset(images, batch_size, **options)
    return batches.skip(skip_batches) if skip_batches else batches
