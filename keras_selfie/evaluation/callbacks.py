"""Callbacks that evaluate Selfie's features during pretraining."""

import keras

from keras_selfie.evaluation.features import extract_features
from keras_selfie.evaluation.features import get_patch_network
from keras_selfie.evaluation.features import labeled_batches
from keras_selfie.evaluation.knn import knn_accuracy
from keras_selfie.utils.validation import check_non_empty_string
from keras_selfie.utils.validation import check_positive_int


class KNNMonitor(keras.callbacks.Callback):
    """Reports the kNN accuracy of `P`'s frozen features during `fit`.

    Every `every_n_epochs` epochs (and after the last epoch), the features
    of the current patch network on whole images are extracted for both
    datasets (`extract_features`, inference mode) and classified by
    `knn_accuracy`. The result is written into the epoch's `logs` under
    `name`, so it shows in the progress bar and in the `History` returned
    by `fit`, next to `loss` and `patch_accuracy`: `fit` appends its
    `History` and `ProgbarLogger` after the callbacks it is given, and all
    callbacks of an epoch share one `logs` dict. Callbacks listed before
    this one (e.g. `EarlyStopping(monitor="knn_accuracy")`) do not see the
    value; list them after it.

    On epochs without a kNN evaluation the key is absent, so
    `history.history[name]` then holds one value per evaluated epoch;
    `results` maps each evaluated epoch (0-based) to its accuracy.

    Args:
        train_dataset: labeled data forming the kNN memory bank, in any form
            `extract_features` takes (no augmentation).
        test_dataset: labeled data to classify.
        every_n_epochs: int. Evaluate after every N-th epoch.
        k: int. Neighbours per vote. Defaults to 20.
        temperature: float. Vote temperature. Defaults to 0.07.
        weighted: bool. `False` gives a majority vote.
        batch_size: int. Batch size of feature extraction for unbatched
            datasets.
        name: str. Key of the accuracy in `logs`.

    Example:

    ```python
    labeled = data.load_tfds("cifar10", split="train", labeled=True)
    test = data.load_tfds("cifar10", split="test", labeled=True)
    monitor = KNNMonitor(labeled.take(5000), test.take(1000), every_n_epochs=5)
    history = pretrainer.fit(train, epochs=100, callbacks=[monitor])
    history.history["knn_accuracy"]
    ```
    """

    def __init__(
        self,
        train_dataset,
        test_dataset,
        every_n_epochs=1,
        k=20,
        temperature=0.07,
        weighted=True,
        batch_size=256,
        name="knn_accuracy",
    ):
        super().__init__()
        self.train_dataset = labeled_batches(
            train_dataset, batch_size, "train_dataset"
        )
        self.test_dataset = labeled_batches(
            test_dataset, batch_size, "test_dataset"
        )
        self.every_n_epochs = check_positive_int(
            "every_n_epochs", every_n_epochs
        )
        self.k = check_positive_int("k", k)
        self.temperature = temperature
        self.weighted = weighted
        self.batch_size = batch_size
        self.name = check_non_empty_string("name", name)
        self.results = {}

    def evaluate(self):
        """Returns the kNN accuracy of the model's current `P`."""
        network = get_patch_network(self.model, "model")
        train = extract_features(network, self.train_dataset)
        test = extract_features(network, self.test_dataset)
        return knn_accuracy(
            *train,
            *test,
            k=self.k,
            temperature=self.temperature,
            weighted=self.weighted,
        )

    def on_epoch_end(self, epoch, logs=None):
        last = self.params and epoch + 1 == self.params.get("epochs")
        if (epoch + 1) % self.every_n_epochs and not last:
            return
        accuracy = self.evaluate()
        self.results[epoch] = accuracy
        if logs is not None:
            logs[self.name] = accuracy
