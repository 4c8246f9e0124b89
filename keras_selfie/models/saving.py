"""Loading a saved `SelfiePretrainer` with errors that say what is wrong."""

import json
import os
import zipfile

import keras

from keras_selfie.models.selfie_pretrainer import SelfiePretrainer


def _saved_class(path):
    """The class name in a `.keras` archive's config, or `None`."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (KeyError, ValueError, zipfile.BadZipFile):
        return None
    return config.get("class_name") if isinstance(config, dict) else None


def load_pretrainer(filepath, compile=True):
    """Loads a `SelfiePretrainer` saved with `pretrainer.save(filepath)`.

    `keras.models.load_model` with `safe_mode=True`, with checks first, so
    that a wrong file gives an error that names the file and the problem:
    it does not exist, it is not a `.keras` archive (corrupt, truncated,
    another format), or it holds another model.

    Args:
        filepath: path of a `.keras` file.
        compile: bool. Whether to restore the optimizer and its state, to
            continue training (as `keras.models.load_model`).

    Returns:
        The `SelfiePretrainer`.

    Raises:
        ValueError: if the file is missing, unreadable or holds another
            model.

    Example:

    ```python
    pretrainer.save("selfie.keras")
    pretrainer = keras_selfie.load_pretrainer("selfie.keras")
    resnet = keras_selfie.transfer_to_resnet50(pretrainer, classes=10)
    ```
    """
    path = os.fspath(filepath)
    if not os.path.isfile(path):
        raise ValueError(
            "Argument `filepath` must name an existing `.keras` file. "
            f"Received: filepath={path!r} "
            f"({'a folder' if os.path.isdir(path) else 'no such file'})"
        )
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path!r} is not a `.keras` file: it is not a zip archive "
            "(corrupt, truncated, or another format such as `.h5` or "
            "`.weights.h5`). Save the pretrainer with "
            "`pretrainer.save('name.keras')`."
        )
    class_name = _saved_class(path)
    if class_name is None:
        raise ValueError(
            f"{path!r} is not a readable `.keras` file: its `config.json` "
            "is missing or corrupt."
        )
    if class_name != "SelfiePretrainer":
        raise ValueError(
            f"{path!r} holds a model of class {class_name!r}, not a "
            "`keras_selfie.SelfiePretrainer`. Load it with "
            "`keras.models.load_model`, or pass the file of a pretrainer."
        )
    try:
        model = keras.models.load_model(path, compile=compile, safe_mode=True)
    except Exception as error:
        raise ValueError(
            f"{path!r} holds a SelfiePretrainer that cannot be loaded "
            f"(corrupt or truncated weights, or saved by an incompatible "
            f"version): {type(error).__name__}: {error}"
        ) from error
    if not isinstance(model, SelfiePretrainer):
        raise ValueError(
            f"{path!r} holds a {type(model).__name__}, not a "
            "`keras_selfie.SelfiePretrainer`."
        )
    return model
