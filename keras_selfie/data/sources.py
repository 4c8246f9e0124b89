"""Where images come from: TFDS, a folder of image files, NumPy arrays.

Every source returns an unbatched `tf.data.Dataset` whose elements are
`image` (uint8, `(height, width, 3)`) or `(image, label)` with int64 labels.
Shuffling, augmentation, batching and prefetching belong to the pipeline, so
these datasets come in a fixed order: the same elements in the same order on
every pass, which `keras_selfie.data.subsets` relies on.
"""

import os
import socket
import warnings

import numpy as np
import tensorflow as tf

from keras_selfie.utils.validation import check_bool
from keras_selfie.utils.validation import check_choice
from keras_selfie.utils.validation import check_image_dtype
from keras_selfie.utils.validation import to_pair

# Checked with a short connect timeout before TFDS downloads anything, so an
# offline machine fails at once with a clear message instead of hanging in
# retries. TFDS fetches most datasets through Google Cloud Storage.
DOWNLOAD_CHECK_HOST = ("storage.googleapis.com", 443)
DOWNLOAD_CHECK_TIMEOUT = 3.0

CROP_POLICIES = ("center_crop", "resize", "pad")
ON_ERROR_CHOICES = ("raise", "skip")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def load_tfds(
    name,
    split="train",
    labeled=False,
    data_dir=None,
    image_key="image",
    label_key="label",
    download=True,
):
    """Loads a TensorFlow Datasets image dataset as unbatched images.

    The dataset is read from `data_dir` (default: TFDS's own, i.e.
    `$TFDS_DATA_DIR` or `~/tensorflow_datasets`). Where it is prepared there,
    nothing is downloaded. Where it is not, it is downloaded and prepared
    only if `download=True` and the download host answers within
    `DOWNLOAD_CHECK_TIMEOUT` seconds; otherwise a `FileNotFoundError` names
    the dataset, the folder looked in and how to provide the data.
    Grayscale images are repeated to 3 channels and an alpha channel is
    dropped, so every image is `(height, width, 3)` uint8.

    Args:
        name: a TFDS dataset name, e.g. `"cifar10"`, `"stl10"`,
            `"imagenet2012"` (optionally with a version, `"cifar10:3.0.2"`).
        split: any TFDS split, slices included: `"train"`, `"test"`,
            `"train[:8%]"`, `"unlabelled"` (STL-10).
        labeled: if `True`, elements are `(image, label)`; else `image`.
        data_dir: folder holding TFDS datasets; `None` for TFDS's default.
        image_key: the feature holding the images.
        label_key: the feature holding the labels (with `labeled=True`).
        download: whether the dataset may be downloaded when it is missing.

    Returns:
        An unbatched `tf.data.Dataset` of uint8 images `(height, width, 3)`,
        or of `(image, label)` pairs with int64 labels, in the split's stored
        order (`shuffle_files=False`).

    Example:

    >>> images = load_tfds("cifar10", split="train[:1%]")  # doctest: +SKIP
    >>> images.element_spec  # doctest: +SKIP
    TensorSpec(shape=(32, 32, 3), dtype=tf.uint8, name=None)
    >>> pairs = load_tfds("cifar10", split="test", labeled=True)  # doctest: +SKIP
    """
    if not isinstance(name, str) or not name:
        raise ValueError(
            "Argument `name` must be a TFDS dataset name such as 'cifar10'. "
            f"Received: name={name!r}"
        )
    check_bool("labeled", labeled)
    # Imported here, not with the module: TFDS takes seconds to import and
    # only this source needs it (`import keras_selfie` must not load it).
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as error:
        raise ValueError(
            f"Argument `name` is not a dataset known to TensorFlow Datasets. "
            f"Received: name={name!r}. `tfds.list_builders()` lists the "
            f"known names. ({str(error).splitlines()[0]})"
        ) from None

    features = builder.info.features
    if image_key not in features:
        raise ValueError(
            f"Argument `image_key` must be one of the features of {name!r}: "
            f"{sorted(features.keys())}. Received: image_key={image_key!r}"
        )
    image_feature = features[image_key]
    if not isinstance(image_feature, tfds.features.Image):
        raise ValueError(
            f"Argument `image_key` must name an image feature of {name!r}; "
            f"{image_key!r} is {image_feature!r}. "
            f"Received: image_key={image_key!r}"
        )
    channels = image_feature.shape[-1]
    if image_feature.dtype != tf.uint8 or channels not in (1, 3, 4, None):
        raise ValueError(
            f"The image feature {image_key!r} of {name!r} must hold uint8 "
            f"images with 1, 3 or 4 channels. Received: {image_feature!r}"
        )
    if labeled and label_key not in features:
        raise ValueError(
            f"Argument `labeled=True` needs a label feature, but {name!r} has "
            f"no feature {label_key!r} (features: {sorted(features.keys())}). "
            f"Pass `label_key=` or `labeled=False`. "
            f"Received: label_key={label_key!r}"
        )

    if not builder.is_prepared():
        _download_or_raise(builder, name, download)

    dataset = builder.as_dataset(split=split, shuffle_files=False)

    def select(example):
        image = _to_rgb(example[image_key])
        if labeled:
            return image, tf.cast(example[label_key], tf.int64)
        return image

    return dataset.map(select, num_parallel_calls=tf.data.AUTOTUNE)


def _download_or_raise(builder, name, download):
    folder = os.path.dirname(os.path.dirname(builder.data_dir))
    how = (
        f"Put the prepared dataset under {folder} (i.e. "
        f"{builder.data_dir}), or point `data_dir=` / the TFDS_DATA_DIR "
        f"environment variable at a folder that holds {builder.name}/"
    )
    if not download:
        raise FileNotFoundError(
            f"Dataset {name!r} is not prepared in {folder} (looked for "
            f"{builder.data_dir}) and `download=False`. {how}, or call with "
            "download=True on a machine with internet access."
        )
    host, port = DOWNLOAD_CHECK_HOST
    try:
        with socket.create_connection(
            (host, port), timeout=DOWNLOAD_CHECK_TIMEOUT
        ):
            pass
    except OSError as error:
        raise FileNotFoundError(
            f"Dataset {name!r} is not prepared in {folder} (looked for "
            f"{builder.data_dir}), and it cannot be downloaded: the download "
            f"host {host}:{port} did not answer within "
            f"{DOWNLOAD_CHECK_TIMEOUT} s ({error}). {how}, or run on a "
            "machine with internet access."
        ) from None
    builder.download_and_prepare()


def _to_rgb(image):
    """Makes a `(height, width, 1|3|4)` image `(height, width, 3)`."""
    channels = image.shape[-1]
    if channels == 3:
        return image
    if channels == 1:
        return tf.image.grayscale_to_rgb(image)
    if channels == 4:
        return image[..., :3]
    # Unknown channel count (only known when the graph runs).
    image = tf.cond(
        tf.shape(image)[-1] == 1,
        lambda: tf.image.grayscale_to_rgb(image),
        lambda: image[..., :3],
    )
    image.set_shape(image.shape[:-1].concatenate([3]))
    return image


def load_image_folder(
    directory,
    image_size,
    labeled="infer",
    crop_policy="center_crop",
    on_error="raise",
    extensions=IMAGE_EXTENSIONS,
):
    """Loads a folder of image files as unbatched, same-sized RGB images.

    Two layouts are understood:

    - unlabeled: the image files lie in `directory` itself (or, with
      `labeled=False`, anywhere below it);
    - labeled: one subfolder per class, `directory/<class_name>/...`; the
      label of an image is the index of its class in the sorted list of
      subfolder names, which the returned dataset holds as `class_names`.

    Files are decoded with `tf.io.decode_image` (PNG, JPEG, BMP, GIF: first
    frame); grayscale becomes RGB and an alpha channel is dropped. Images of
    any size are brought to `image_size` by `crop_policy`.

    Every file is decoded once when the dataset is built, in a parallel
    `tf.data` pass, so that a corrupt file is reported by name here rather
    than crashing training mid-epoch. That costs one decoding pass over the
    folder (about as long as one epoch of reading, e.g. a few seconds for
    tens of thousands of small images, and a long time for ImageNet-sized
    folders).

    Args:
        directory: path of the folder.
        image_size: `(height, width)` or an int for square images.
        labeled: `True` (class subfolders), `False` (no labels; every image
            below `directory`), or `"infer"`: labeled when the images lie in
            subfolders, unlabeled when they lie in `directory` itself.
        crop_policy: how an image of another size is brought to
            `image_size`:
            `"center_crop"`: resize so the shorter side fits, then crop the
                centre (keeps the aspect ratio, loses the borders);
            `"resize"`: resize to `image_size` (the aspect ratio changes);
            `"pad"`: resize so the longer side fits, then pad with black
                (keeps the aspect ratio and the whole image).
        on_error: what to do with files that cannot be decoded: `"raise"`
            raises a `ValueError` listing them; `"skip"` leaves them out,
            warns with their count and names, and records them on the
            dataset.
        extensions: file name endings that count as images
            (case-insensitive); other files are ignored.

    Returns:
        An unbatched `tf.data.Dataset` of uint8 images
        `(height, width, 3)`, or of `(image, label)` pairs with int64 labels
        when labeled, in sorted file order. It carries the attributes
        `class_names` (list of str, or `None` when unlabeled),
        `file_paths` (the files it yields, in order), `skipped_files` (the
        undecodable files left out) and `num_skipped`.

    Example:

    >>> dataset = load_image_folder("flowers/", 64)  # doctest: +SKIP
    >>> dataset.class_names  # doctest: +SKIP
    ['daisy', 'rose', 'tulip']
    >>> image, label = next(iter(dataset))  # doctest: +SKIP
    >>> image.shape, image.dtype  # doctest: +SKIP
    (TensorShape([64, 64, 3]), tf.uint8)
    """
    height, width = to_pair("image_size", image_size)
    check_choice("crop_policy", crop_policy, CROP_POLICIES)
    check_choice("on_error", on_error, ON_ERROR_CHOICES)
    if labeled not in (True, False, "infer"):
        raise ValueError(
            "Argument `labeled` must be True, False or 'infer'. "
            f"Received: labeled={labeled!r}"
        )
    if isinstance(extensions, str) or not extensions or not all(
        isinstance(e, str) and e.startswith(".") for e in extensions
    ):
        raise ValueError(
            "Argument `extensions` must be a non-empty tuple of file "
            "endings such as ('.png', '.jpg'). "
            f"Received: extensions={extensions!r}"
        )
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise ValueError(
            "Argument `directory` must be an existing folder. "
            f"Received: directory={directory!r} "
            f"({'not a folder' if os.path.exists(directory) else 'missing'})"
        )

    paths, labels, class_names = _list_images(
        directory, labeled, tuple(e.lower() for e in extensions)
    )
    bad = _undecodable(paths)
    if bad:
        names = ", ".join(paths[i] for i in bad)
        if on_error == "raise":
            raise ValueError(
                f"{len(bad)} file(s) in {directory!r} cannot be decoded as "
                f"images: {names}. Remove or fix them, or pass "
                "on_error='skip' to leave them out."
            )
        warnings.warn(
            f"load_image_folder: skipped {len(bad)} file(s) in "
            f"{directory!r} that cannot be decoded: {names}",
            stacklevel=2,
        )
    skipped = [paths[i] for i in bad]
    keep = sorted(set(range(len(paths))) - set(bad))
    paths = [paths[i] for i in keep]
    if not paths:
        raise ValueError(
            f"No readable image in {directory!r}: all {len(skipped)} "
            f"image file(s) are undecodable: {', '.join(skipped)}"
        )

    def read(path):
        image = _decode(tf.io.read_file(path))
        return _fit(image, height, width, crop_policy)

    dataset = tf.data.Dataset.from_tensor_slices(paths)
    if class_names is not None:
        labels = np.asarray([labels[i] for i in keep], dtype=np.int64)
        dataset = tf.data.Dataset.from_tensor_slices((paths, labels))
        dataset = dataset.map(
            lambda path, label: (read(path), label),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    else:
        dataset = dataset.map(
            read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
    dataset.class_names = class_names
    dataset.file_paths = paths
    dataset.skipped_files = skipped
    dataset.num_skipped = len(skipped)
    return dataset


def _is_image(filename, extensions):
    return filename.lower().endswith(extensions)


def _walk_images(folder, extensions):
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs.sort()
        found.extend(
            os.path.join(root, f)
            for f in sorted(files)
            if _is_image(f, extensions)
        )
    return found


def _list_images(directory, labeled, extensions):
    """Returns `(paths, labels, class_names)`; labels are None unlabeled."""
    entries = sorted(os.listdir(directory))
    top_files = [
        os.path.join(directory, e)
        for e in entries
        if os.path.isfile(os.path.join(directory, e))
        and _is_image(e, extensions)
    ]
    subfolders = [
        e for e in entries if os.path.isdir(os.path.join(directory, e))
    ]
    class_files = {
        name: _walk_images(os.path.join(directory, name), extensions)
        for name in subfolders
    }
    class_files = {name: f for name, f in class_files.items() if f}
    allowed = ", ".join(extensions)

    if labeled == "infer":
        if top_files and class_files:
            raise ValueError(
                f"Cannot infer the layout of {directory!r}: it holds image "
                f"files itself and in the subfolders {sorted(class_files)}. "
                "Pass labeled=False to use every image without labels, or "
                "move the loose files into class subfolders and pass "
                "labeled=True."
            )
        labeled = bool(class_files)

    if labeled:
        if top_files:
            raise ValueError(
                f"With labeled=True, {directory!r} must hold one subfolder "
                f"per class and no loose images, but it holds "
                f"{len(top_files)} image file(s) such as {top_files[0]!r}, "
                "which would have no class."
            )
        if not class_files:
            raise ValueError(
                f"No image files ({allowed}) in class subfolders of "
                f"{directory!r}. Received: directory={directory!r}"
            )
        class_names = sorted(class_files)
        paths, labels = [], []
        for index, name in enumerate(class_names):
            paths.extend(class_files[name])
            labels.extend([index] * len(class_files[name]))
        return paths, labels, class_names

    paths = _walk_images(directory, extensions)
    if not paths:
        raise ValueError(
            f"No image files ({allowed}) in {directory!r}. "
            f"Received: directory={directory!r}"
        )
    return paths, None, None


def _decode(contents):
    image = tf.io.decode_image(
        contents, channels=3, dtype=tf.uint8, expand_animations=False
    )
    image.set_shape([None, None, 3])
    return image


def _undecodable(paths):
    """Indices of the files that `tf.io.decode_image` cannot read."""
    dataset = tf.data.Dataset.from_tensor_slices(paths).enumerate()
    dataset = dataset.map(
        lambda index, path: (index, tf.shape(_decode(tf.io.read_file(path)))),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=False,
    )
    dataset = dataset.ignore_errors(log_warning=False).map(
        lambda index, shape: index
    )
    decoded = set()
    for indices in dataset.batch(4096).as_numpy_iterator():
        decoded.update(indices.tolist())
    return sorted(set(range(len(paths))) - decoded)


def _fit(image, height, width, crop_policy):
    """Brings a uint8 `(h, w, 3)` image to `(height, width, 3)` uint8."""
    if crop_policy == "resize":
        image = tf.image.resize(image, (height, width), antialias=True)
    elif crop_policy == "pad":
        image = tf.image.resize_with_pad(
            image, height, width, antialias=True
        )
    else:
        # The largest centred box with the target aspect ratio, resized:
        # the same as resizing the shorter side and cropping the centre,
        # without resizing the pixels that are then cut away.
        shape = tf.shape(image)
        h, w = shape[0], shape[1]
        crop_h = tf.minimum(h, tf.cast(tf.round(w * height / width), tf.int32))
        crop_w = tf.minimum(w, tf.cast(tf.round(h * width / height), tf.int32))
        crop_h, crop_w = tf.maximum(crop_h, 1), tf.maximum(crop_w, 1)
        image = tf.image.crop_to_bounding_box(
            image, (h - crop_h) // 2, (w - crop_w) // 2, crop_h, crop_w
        )
        image = tf.image.resize(image, (height, width), antialias=True)
    image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
    image.set_shape((height, width, 3))
    return image


def from_arrays(images, labels=None):
    """Makes an unbatched dataset from NumPy image arrays.

    Args:
        images: array `(N, H, W, C)` with `C` 1 or 3, or `(N, H, W)`
            grayscale; uint8 (0-255) or floating point (kept as float, no
            rescaling). Grayscale is repeated to 3 channels. Float images
            must be finite.
        labels: optional integer array of shape `(N,)`.

    Returns:
        An unbatched `tf.data.Dataset` of `(H, W, 3)` images of the input
        dtype, or of `(image, label)` pairs with int64 labels. The arrays
        are embedded in the dataset (fine for CIFAR-sized data; for arrays of
        several GB use `load_image_folder` or TFDS instead).

    Example:

    >>> images = np.zeros((8, 32, 32, 3), dtype="uint8")
    >>> dataset = from_arrays(images, labels=np.arange(8))
    >>> [tuple(t.shape) for t in dataset.element_spec]
    [(32, 32, 3), ()]
    """
    images = np.asarray(images)
    if not (
        np.issubdtype(images.dtype, np.integer)
        or np.issubdtype(images.dtype, np.floating)
    ):
        raise ValueError(
            "Argument `images` must be a numeric array (uint8 or float). "
            f"Received: images with dtype={images.dtype}"
        )
    check_image_dtype("images", images.dtype)
    received_shape = images.shape
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            "Argument `images` must have shape (N, H, W, C) with C = 1 or 3, "
            f"or (N, H, W) for grayscale. Received: images.shape="
            f"{received_shape}"
        )
    if 0 in images.shape:
        raise ValueError(
            "Argument `images` must hold at least one non-empty image. "
            f"Received: images.shape={received_shape}"
        )
    if np.issubdtype(images.dtype, np.floating) and not np.all(
        np.isfinite(images)
    ):
        bad = int(np.count_nonzero(~np.isfinite(images)))
        raise ValueError(
            "Argument `images` must hold finite values. "
            f"Received: {bad} NaN or infinite value(s)"
        )
    if labels is not None:
        labels = np.asarray(labels)
        if not np.issubdtype(labels.dtype, np.integer) or labels.ndim != 1:
            raise ValueError(
                "Argument `labels` must be a 1-D integer array of shape (N,). "
                f"Received: labels with dtype={labels.dtype}, "
                f"shape={labels.shape}"
            )
        if len(labels) != len(images):
            raise ValueError(
                "Arguments `images` and `labels` must have the same length. "
                f"Received: len(images)={len(images)}, "
                f"len(labels)={len(labels)}"
            )
        labels = labels.astype(np.int64)

    def to_rgb(image):
        if image.shape[-1] == 1:
            return tf.image.grayscale_to_rgb(image)
        return image

    if labels is None:
        dataset = tf.data.Dataset.from_tensor_slices(images)
        return dataset.map(to_rgb)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    return dataset.map(lambda image, label: (to_rgb(image), label))
