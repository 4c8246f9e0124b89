"""Loading a saved pretrainer with errors that say what is wrong; presets."""

import json
import os
import zipfile

import keras

from keras_selfie.models.pretrainer import Pretrainer
from keras_selfie.models.pretrainer import check_pretrainer
from keras_selfie.models.pretrainer import constructor_arguments


def _saved_class(path):
    """`(class name, class)` of a `.keras` archive's model: `(None, None)`
    for an unreadable config, the class `None` for an unregistered one."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (KeyError, ValueError, zipfile.BadZipFile):
        return None, None
    if not isinstance(config, dict):
        return None, None
    registered = config.get("registered_name") or config.get("class_name")
    return config.get("class_name"), keras.saving.get_registered_object(
        registered
    )


def load_pretrainer(filepath, compile=True):
    """Loads a pretrainer saved with `pretrainer.save(filepath)`.

    `keras.models.load_model` with `safe_mode=True`, with checks first, so
    that a wrong file gives an error that names the file and the problem:
    it does not exist, it is not a `.keras` archive (corrupt, truncated,
    another format), or it holds another model.

    Args:
        filepath: path of a `.keras` file.
        compile: bool. Whether to restore the optimizer and its state, to
            continue training (as `keras.models.load_model`).

    Returns:
        The pretrainer (a `keras_selfie.Pretrainer`: `SelfiePretrainer` or
        another pretext task).

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
    class_name, cls = _saved_class(path)
    if class_name is None:
        raise ValueError(
            f"{path!r} is not a readable `.keras` file: its `config.json` "
            "is missing or corrupt."
        )
    if not (isinstance(cls, type) and issubclass(cls, Pretrainer)):
        raise ValueError(
            f"{path!r} holds a model of class {class_name!r}, not a "
            "`keras_selfie.Pretrainer` (such as `SelfiePretrainer`). Load "
            "it with `keras.models.load_model`, or pass the file of a "
            "pretrainer."
        )
    try:
        model = keras.models.load_model(path, compile=compile, safe_mode=True)
    except Exception as error:
        raise ValueError(
            f"{path!r} holds a {class_name} that cannot be loaded "
            f"(corrupt or truncated weights, or saved by an incompatible "
            f"version): {type(error).__name__}: {error}"
        ) from error
    return check_pretrainer(model, "filepath")


# The files of a preset folder, as keras-hub names them.
PRESET_CONFIG = "config.json"
PRESET_METADATA = "metadata.json"
PRESET_WEIGHTS = "model.weights.h5"


def save_to_preset(pretrainer, preset_dir):
    """Writes `pretrainer` as a preset folder: config, metadata, weights.

    `config.json` is the Keras serialization of the model (class and
    arguments), `metadata.json` the library, Keras and TensorFlow versions,
    the date and the parameter count, `model.weights.h5` the weights. See
    `Pretrainer.save_to_preset`.
    """
    import datetime

    import tensorflow as tf

    import keras_selfie

    if not pretrainer.built:
        pretrainer.build()
    os.makedirs(preset_dir, exist_ok=True)
    config = keras.saving.serialize_keras_object(pretrainer)
    config.pop("compile_config", None)
    metadata = {
        "keras_selfie_version": keras_selfie.__version__,
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "date_saved": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d@%H:%M:%S"
        ),
        "parameter_count": pretrainer.count_params(),
    }
    for name, content in ((PRESET_CONFIG, config), (PRESET_METADATA, metadata)):
        with open(os.path.join(preset_dir, name), "w") as file:
            json.dump(content, file, indent=2)
            file.write("\n")
    pretrainer.save_weights(os.path.join(preset_dir, PRESET_WEIGHTS))


def load_preset(cls, preset, load_weights=True, **kwargs):
    """A model of class `cls` from a named preset or a preset folder.

    A named preset's `config` serves every method: `cls` takes the entries
    it has arguments for (the backbone's `image_size`, `stem`, `width`, ...)
    and leaves the others (e.g. Selfie's `patch_size` for rotation). See
    `Pretrainer.from_preset`.
    """
    from keras_selfie import presets

    path = os.fspath(preset) if isinstance(preset, os.PathLike) else preset
    accepted = constructor_arguments(cls)
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ValueError(
            f"{cls.__name__} has no argument {unknown[0]!r}. Its arguments: "
            f"{sorted(accepted)}. Received: {unknown[0]}={kwargs[unknown[0]]!r}"
        )
    if not (isinstance(path, str) and os.path.isdir(path)):
        config = presets.get(path)["config"]
        config = {k: v for k, v in config.items() if k in accepted}
        return cls(**{**config, **kwargs})
    config_file = os.path.join(path, PRESET_CONFIG)
    weights_file = os.path.join(path, PRESET_WEIGHTS)
    needed = [config_file] + ([weights_file] if load_weights else [])
    for file in needed:
        if not os.path.isfile(file):
            raise ValueError(
                f"{path!r} is not a preset folder: it lacks "
                f"`{os.path.basename(file)}`. Write one with "
                "`pretrainer.save_to_preset(path)`, or pass a preset name: "
                f"{sorted(presets.PRESETS)}."
            )
    with open(config_file) as file:
        config = json.load(file)
    saved_class = config.get("class_name") if isinstance(config, dict) else None
    saved = keras.saving.get_registered_object(
        config.get("registered_name") or saved_class
    ) if saved_class else None
    if not (isinstance(saved, type) and issubclass(saved, cls)):
        raise ValueError(
            f"The preset in {path!r} holds a {saved_class!r}, not a "
            f"{cls.__name__}."
        )
    config["config"].update(kwargs)
    model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    if not model.built:
        model.build()
    if load_weights:
        model.load_weights(weights_file)
    return model
