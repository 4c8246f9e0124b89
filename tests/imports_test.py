"""`import keras_selfie` loads keras_tuner, TFDS and matplotlib only on use."""

import json
import os
import subprocess
import sys
import textwrap

import keras_selfie

# Run in a fresh interpreter: this one has imported everything already.
# `import keras` itself loads matplotlib.pyplot where matplotlib is installed
# (keras.visualization), so for matplotlib the script also records the
# import statements that run inside keras_selfie's own modules.
_SCRIPT = textwrap.dedent(
    """
    import builtins
    import json
    import sys

    LAZY = ("keras_tuner", "tensorflow_datasets", "matplotlib")
    imports_by_us = []
    _import = builtins.__import__

    def recording_import(name, globals=None, *args, **kwargs):
        importer = (globals or {}).get("__name__", "")
        if importer.startswith("keras_selfie") and name.startswith(LAZY):
            imports_by_us.append(f"{importer}: {name}")
        return _import(name, globals, *args, **kwargs)

    builtins.__import__ = recording_import

    def loaded():
        return sorted(m for m in LAZY if m in sys.modules)

    import keras

    report = {"by_keras": loaded()}
    import keras_selfie

    report["after_import"] = loaded()
    report["imports_by_us"] = list(imports_by_us)
    report["tuning_in_dir"] = "tuning" in dir(keras_selfie)
    report["load_tfds"] = keras_selfie.data.load_tfds.__name__
    report["hypermodel"] = keras_selfie.tuning.SelfieHyperModel.__name__
    from keras_selfie.tuning import selfie_objective

    report["objective"] = selfie_objective("val_loss").direction
    figure = keras_selfie.visualization.plot_training_curves(
        {"loss": [2.0, 1.0]}
    )
    report["figure"] = type(figure).__name__
    report["after_use"] = loaded()
    report["imports_by_us_after_use"] = sorted(set(imports_by_us))
    print("REPORT " + json.dumps(report))
    """
)


def test_import_keras_selfie_defers_heavy_libraries():
    # The copy of keras_selfie these tests import, not another install.
    here = os.path.dirname(os.path.dirname(keras_selfie.__file__))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (here, env.get("PYTHONPATH")) if p
    )
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = [l for l in result.stdout.splitlines() if l.startswith("REPORT ")]
    report = json.loads(line[-1][len("REPORT "):])

    # Nothing of keras_selfie imports them at import time ...
    assert report["imports_by_us"] == []
    # ... so none is loaded but what keras loads itself (matplotlib).
    assert report["after_import"] == report["by_keras"]
    assert "keras_tuner" not in report["after_import"]
    assert "tensorflow_datasets" not in report["after_import"]

    # The public names are reachable as before, and load what they need.
    assert report["tuning_in_dir"]
    assert report["load_tfds"] == "load_tfds"
    assert report["hypermodel"] == "SelfieHyperModel"
    assert report["objective"] == "min"
    assert report["figure"] == "Figure"
    assert {"keras_tuner", "matplotlib"} <= set(report["after_use"])
    assert any(
        i.startswith("keras_selfie.visualization") and "matplotlib" in i
        for i in report["imports_by_us_after_use"]
    )
