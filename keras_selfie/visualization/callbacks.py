"""A callback that shows a pretrainer's predictions in TensorBoard during
`fit`, whatever its pretext task."""

import os

import keras
import tensorflow as tf

from keras_selfie.utils.validation import check_int_in_range
from keras_selfie.utils.validation import check_non_empty_string
from keras_selfie.utils.validation import check_positive_int
from keras_selfie.visualization.figures import figure_to_png
from keras_selfie.visualization.figures import to_image_array
from keras_selfie.visualization.predictions import check_picture
from keras_selfie.visualization.predictions import plot_predictions

# The run (sub-folder of `log_dir`) the pictures are written to.
IMAGES_RUN = "images"


def figure_to_image(figure):
    """Returns `figure` as a `(1, height, width, 4)` uint8 RGBA tensor.

    The form `tf.summary.image` takes: the figure's PNG (`figure_to_png`)
    decoded by TensorFlow.
    """
    return tf.image.decode_png(figure_to_png(figure), channels=4)[None]


class PredictionImages(keras.callbacks.Callback):
    """Logs pictures of a pretrainer's predictions to TensorBoard.

    Every `every_n_epochs` epochs (and after the last epoch), draws
    `plot_predictions` for the same images with the same `seed`, so that
    the pictures of successive epochs compare (the same masked positions,
    puzzles, pairs, copies or views), and writes it with
    `tf.summary.image` under the tag `name` at step `epoch` (0-based, the
    step `keras.callbacks.TensorBoard` gives the epoch's scalars). Any
    pretrainer with a picture works (`picture_descriptions()`); the method
    is found from the model, as `plot_predictions` finds it.

    The pictures go to the run `images`, the folder `log_dir/images`:
    given the `log_dir` of a `keras.callbacks.TensorBoard` callback, they
    show in TensorBoard's Images tab beside its `train` and `validation`
    runs, whose scalars share the step axis. They are not written into
    `log_dir/train` itself because TensorBoard, by default, follows only
    the newest event file of a run folder, and would stop updating one of
    the two writers' files.

    The picture's random draws come from the model's seed generators set
    to `seed` and restored after it (`plot_predictions`), so the training
    draws stay as they would be without the callback. The model runs in
    inference mode on the images, eagerly, which costs one forward pass of
    `max_images` images per picture.

    Args:
        images: `(batch, height, width, channels)` uint8 or float images of
            the pretrainer's size (NumPy array or tensor).
        log_dir: folder of the TensorBoard logs.
        every_n_epochs: int. Draw after every N-th epoch.
        max_images: int. Only the first `max_images` images are drawn.
        name: str. The summary's tag.
        seed: int >= 0. Seed of the picture's random draws.
        **options: the options of the method's picture
            (`plot_predictions`), such as Selfie's `image_index` and
            `position_index`; checked when the callback gets its model.

    Example:

    ```python
    images = next(iter(data.load_tfds("cifar10", split="test").batch(8)))
    pretrainer.fit(
        train,
        epochs=100,
        callbacks=[
            keras.callbacks.TensorBoard("logs"),
            PredictionImages(images, "logs", every_n_epochs=5),
        ],
    )
    # tensorboard --logdir logs
    ```
    """

    def __init__(
        self,
        images,
        log_dir,
        every_n_epochs=1,
        max_images=8,
        name="predictions",
        seed=0,
        **options,
    ):
        super().__init__()
        images = to_image_array(images)
        self.max_images = check_positive_int("max_images", max_images)
        self.images = images[: self.max_images]
        if not isinstance(log_dir, (str, os.PathLike)):
            raise ValueError(
                "Argument `log_dir` must be a folder path. "
                f"Received: log_dir={log_dir!r}"
            )
        self.log_dir = os.fspath(log_dir)
        self.every_n_epochs = check_positive_int(
            "every_n_epochs", every_n_epochs
        )
        self.name = check_non_empty_string("name", name)
        self.seed = seed if seed is None else check_int_in_range(
            "seed", seed, 0
        )
        self.options = options
        self._writer = None

    def set_model(self, model):
        check_picture(model, self.images, self.options)
        super().set_model(model)

    def on_train_begin(self, logs=None):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(
                os.path.join(self.log_dir, IMAGES_RUN)
            )

    def on_epoch_end(self, epoch, logs=None):
        last = self.params and epoch + 1 == self.params.get("epochs")
        if (epoch + 1) % self.every_n_epochs and not last:
            return
        figure = plot_predictions(
            self.model, self.images, seed=self.seed, **self.options
        )
        with self._writer.as_default():
            tf.summary.image(self.name, figure_to_image(figure), step=epoch)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
