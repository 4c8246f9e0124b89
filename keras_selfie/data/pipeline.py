"""Fast `tf.data` input pipelines for Selfie pretraining and fine-tuning.

`make_dataset` turns an unbatched dataset of images, or of `(image, label)`
pairs (what `keras_selfie.data.sources` and `tfds.load(...,
as_supervised=True)` return), into batches ready for `model.fit`: cached
before augmentation, shuffled, augmented in parallel with one seed per
example, batched with static shapes and prefetched.

`distributed_dataset` builds one such pipeline per input worker for a
`tf.distribute` strategy.
"""

import tensorflow as tf

from keras_selfie.utils.images import scale_images
from keras_selfie.utils.validation import check_bool
from keras_selfie.utils.validation import check_image_dtype
from keras_selfie.utils.validation import check_optional_int
from keras_selfie.utils.validation import check_positive_int

AUTOTUNE = tf.data.AUTOTUNE


def _check_dataset(dataset):
    """Returns `True` for `(image, label)` elements, `False` for images."""
    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(
            "Argument `dataset` must be a `tf.data.Dataset` of unbatched "
            "images or (image, label) pairs. "
            f"Received: dataset={dataset!r}"
        )
    spec = dataset.element_spec
    has_labels = isinstance(spec, tuple) and len(spec) == 2
    image_spec = spec[0] if has_labels else spec
    if not isinstance(image_spec, tf.TensorSpec) or (
        has_labels and not isinstance(spec[1], tf.TensorSpec)
    ):
        raise ValueError(
            "Argument `dataset` must yield images or (image, label) pairs of "
            "tensors; for TFDS use `as_supervised=True` or map a feature "
            f"dict to a tuple. Received element_spec={spec!r}"
        )
    rank = image_spec.shape.rank
    if rank == 4:
        raise ValueError(
            "Argument `dataset` must be unbatched: its images have rank 4 "
            "(batch, height, width, channels), so it looks batched already. "
            "Pass the dataset before `.batch()` (or call `.unbatch()`); "
            "`make_dataset` batches it itself. "
            f"Received element_spec={spec!r}"
        )
    if rank is not None and rank != 3:
        raise ValueError(
            "Argument `dataset` must yield images of rank 3 (height, width, "
            f"channels). Received element_spec={spec!r}"
        )
    check_image_dtype("The images of `dataset`", image_spec.dtype)
    return has_labels


def _check_size(dataset, batch_size, drop_remainder, repeat):
    """Rejects a dataset that would give no batch, when its size is known."""
    size = int(dataset.cardinality())
    if size == 0:
        raise ValueError(
            "Argument `dataset` is empty: it yields no example. Check the "
            "source (split name, folder, filter)."
        )
    if repeat is True:
        return
    passes = repeat or 1
    if drop_remainder and 0 < size * passes < batch_size:
        raise ValueError(
            f"Argument `dataset` holds {size} example(s) ({passes} "
            f"pass(es)), fewer than batch_size={batch_size}, and "
            "`drop_remainder=True` (the "
            "default when training) drops incomplete batches, so no batch "
            "would be made. Pass a smaller `batch_size` or "
            "`drop_remainder=False`."
        )


def make_dataset(
    dataset,
    batch_size,
    training=True,
    augment=None,
    shuffle_buffer=10_000,
    cache=False,
    repeat=None,
    drop_remainder=None,
    seed=None,
    num_parallel_calls=AUTOTUNE,
    deterministic=None,
):
    """Batches an unbatched image dataset for training or evaluation.

    The steps, in order: `cache` (of the decoded, un-augmented examples, so
    every epoch gets fresh augmentations), `shuffle` (training only),
    `repeat`, a per-example seed zipped in from
    `tf.data.Dataset.random(seed)`, `map(augment)` in parallel, `batch`,
    `prefetch(AUTOTUNE)`. Labels, if any, travel with their image through
    every step.

    Args:
        dataset: unbatched `tf.data.Dataset` of images `(height, width,
            channels)` (uint8 or float) or of `(image, label)` pairs.
        batch_size: positive int, examples per batch (the per-replica batch
            inside `distributed_dataset`).
        training: bool. Shuffles (with `shuffle_buffer`) and draws new
            augmentation seeds each epoch when True.
        augment: None or a function `(image, seed) -> image` with `seed` a
            shape-`(2,)` int64 tensor, e.g. from
            `keras_selfie.data.augment.pretraining_augmentation()`.
        shuffle_buffer: int >= 0, shuffle buffer size; 0 turns shuffling
            off. 10,000 mixes CIFAR-10 well; use the dataset size for a full
            shuffle. Ignored when `training=False`.
        cache: False, True (in memory) or a file path prefix
            (`Dataset.cache(filename)`). Caching happens before shuffling
            and augmentation.
        repeat: None or False (one pass per iteration: `fit(epochs=...)`
            iterates again and reshuffles each epoch), True (endless; pass
            `steps_per_epoch` to `fit`) or a positive int (that many passes).
        drop_remainder: bool; None means True when training (every batch
            has the same static size, which XLA and TPUs need) and False
            otherwise (evaluation sees every example).
        seed: None or int; seeds the shuffle and the augmentation seeds, so
            the same seed gives the same batches in the same order.
        num_parallel_calls: int or `tf.data.AUTOTUNE`, parallelism of the
            augmentation map.
        deterministic: None (the `tf.data` option, deterministic by default)
            or bool; False lets parallel map return examples out of order
            for speed. Each example's seed is attached before the map, so
            its augmentation does not depend on this.

    Returns:
        A batched, prefetched `tf.data.Dataset` of images or of
        `(images, labels)`.

    Example:

    ```python
    images = tfds.load("cifar10", split="train", as_supervised=True)
    train = make_dataset(
        images, batch_size=128, augment=pretraining_augmentation(), seed=0
    )
    pretrainer.fit(train, epochs=100)
    ```
    """
    has_labels = _check_dataset(dataset)
    batch_size = check_positive_int("batch_size", batch_size)
    check_bool("training", training)
    if augment is not None and not callable(augment):
        raise ValueError(
            "Argument `augment` must be None or a function (image, seed) -> "
            f"image. Received: augment={augment!r}"
        )
    shuffle_buffer = check_optional_int("shuffle_buffer", shuffle_buffer, 0)
    if not isinstance(cache, (bool, str)):
        raise ValueError(
            "Argument `cache` must be True, False or a file path prefix. "
            f"Received: cache={cache!r}"
        )
    repeat = check_optional_int("repeat", repeat, 1, allow_bool=True)
    check_bool("drop_remainder", drop_remainder, allow_none=True)
    seed = check_optional_int("seed", seed, 0)
    if num_parallel_calls != AUTOTUNE:
        check_positive_int("num_parallel_calls", num_parallel_calls)
    check_bool("deterministic", deterministic, allow_none=True)
    if drop_remainder is None:
        drop_remainder = training
    _check_size(dataset, batch_size, drop_remainder, repeat)

    if cache is True:
        dataset = dataset.cache()
    elif isinstance(cache, str):
        dataset = dataset.cache(cache)
    if training and shuffle_buffer:
        dataset = dataset.shuffle(
            shuffle_buffer, seed=seed, reshuffle_each_iteration=True
        )
    if repeat is True:
        dataset = dataset.repeat()
    elif repeat:
        dataset = dataset.repeat(repeat)
    if augment is not None:
        seeds = tf.data.Dataset.random(
            seed=seed, rerandomize_each_iteration=training
        ).batch(2, drop_remainder=True)
        dataset = tf.data.Dataset.zip(dataset, seeds)
        if has_labels:
            def apply(example, example_seed):
                image, label = example
                return augment(image, example_seed), label
        else:
            def apply(image, example_seed):
                return augment(image, example_seed)
        dataset = dataset.map(
            apply,
            num_parallel_calls=num_parallel_calls,
            deterministic=deterministic,
        )
    dataset = dataset.batch(
        batch_size,
        drop_remainder=drop_remainder,
        num_parallel_calls=num_parallel_calls,
        deterministic=deterministic,
    )
    return dataset.prefetch(AUTOTUNE)


def distributed_dataset(strategy, dataset_fn, global_batch_size, **kwargs):
    """One sharded `make_dataset` pipeline per input worker of a strategy.

    Calls `strategy.distribute_datasets_from_function`: on each input
    worker, `dataset_fn(input_context)` returns the full unbatched dataset
    (images or `(image, label)` pairs), which is sharded with
    `shard(num_input_pipelines, input_pipeline_id)` so each worker reads its
    own part, then batched by `make_dataset` with the per-replica batch size
    `global_batch_size // num_replicas_in_sync`. Each replica gets whole
    per-replica batches; together they cover every example once per epoch.

    When to use it: with several hosts (`MultiWorkerMirroredStrategy`,
    `TPUStrategy` on a pod), where each host should read and augment only
    its share of the data. On one host (`MirroredStrategy` on one machine's
    GPUs), passing a plain `make_dataset(..., batch_size=global_batch_size)`
    to `model.fit` is simpler and equivalent: Keras splits each global
    batch between the replicas. The model's `fit` takes the returned
    `tf.distribute.DistributedDataset` as it is.

    Under `tf.distribute.MultiWorkerMirroredStrategy`, uint8 images are
    scaled to float32 `[0, 1]` here, the values `SelfiePretrainer` and the
    evaluation functions would compute from them: Keras' `fit` all-reduces
    the first batch to build the model, and TensorFlow's collective
    all-reduce has no uint8 kernel (`CollectiveReduceV2` fails with "Value
    for attr 'T' of uint8 is not in the list of allowed values"). For the
    same reason, pass this function's result rather than a plain uint8
    dataset to `fit` on several workers.

    Sharding happens before shuffling and caching, so give `dataset_fn` an
    unshuffled dataset with a fixed order (file-level sharding, e.g. TFDS
    `read_config=tfds.ReadConfig(input_context=...)`, is an alternative that
    then needs no `shard`: return it already sharded and set
    `shard=False`).

    Args:
        strategy: a `tf.distribute.Strategy`.
        dataset_fn: function `input_context -> tf.data.Dataset` returning an
            unbatched dataset.
        global_batch_size: positive int, divisible by
            `strategy.num_replicas_in_sync`.
        **kwargs: `shard` (bool, default True: shard as above) and the other
            arguments of `make_dataset` (`training`, `augment`, `seed`, ...).
            A `seed` is offset by the input pipeline id, so workers draw
            different augmentations.

    Returns:
        A `tf.distribute.DistributedDataset` of per-replica batches.

    Example:

    ```python
    strategy = tf.distribute.MirroredStrategy()
    train = distributed_dataset(
        strategy,
        lambda ctx: tfds.load("cifar10", split="train", as_supervised=True),
        global_batch_size=256,
        augment=pretraining_augmentation(),
        seed=0,
    )
    ```
    """
    if not isinstance(strategy, tf.distribute.Strategy):
        raise ValueError(
            "Argument `strategy` must be a `tf.distribute.Strategy`. "
            f"Received: strategy={strategy!r}"
        )
    if not callable(dataset_fn):
        raise ValueError(
            "Argument `dataset_fn` must be a function input_context -> "
            f"tf.data.Dataset. Received: dataset_fn={dataset_fn!r}"
        )
    global_batch_size = check_positive_int(
        "global_batch_size", global_batch_size
    )
    replicas = strategy.num_replicas_in_sync
    if global_batch_size % replicas:
        raise ValueError(
            "Argument `global_batch_size` must be divisible by the number of "
            f"replicas ({replicas}). Received: "
            f"global_batch_size={global_batch_size}"
        )
    if "batch_size" in kwargs:
        raise ValueError(
            "Pass `global_batch_size`, not `batch_size`, to "
            "`distributed_dataset`; the per-replica batch size is derived "
            "from it."
        )
    shard = check_bool("shard", kwargs.pop("shard", True))
    seed = kwargs.pop("seed", None)
    to_float = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)

    def per_worker(input_context):
        dataset = dataset_fn(input_context)
        _check_dataset(dataset)
        if shard:
            dataset = dataset.shard(
                input_context.num_input_pipelines,
                input_context.input_pipeline_id,
            )
        dataset = make_dataset(
            dataset,
            input_context.get_per_replica_batch_size(global_batch_size),
            seed=(
                None if seed is None
                else seed + input_context.input_pipeline_id
            ),
            **kwargs,
        )
        if to_float:
            dataset = _scale_uint8_batches(dataset)
        return dataset

    return strategy.distribute_datasets_from_function(per_worker)


def _scale_uint8_batches(dataset):
    """Maps uint8 image batches to float32 `[0, 1]`; float ones stay."""
    spec = dataset.element_spec
    has_labels = isinstance(spec, tuple)
    if (spec[0] if has_labels else spec).dtype != tf.uint8:
        return dataset
    if has_labels:
        return dataset.map(
            lambda images, labels: (scale_images(images), labels),
            num_parallel_calls=AUTOTUNE,
        )
    return dataset.map(scale_images, num_parallel_calls=AUTOTUNE)
