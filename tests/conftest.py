"""Shared test set-up.

TensorFlow fixes its devices when it first runs an op, so the two logical
CPUs that the distribution tests need are made here, before any test runs.
"""

import functools
import importlib.util
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0],
    [tf.config.LogicalDeviceConfiguration()] * 2,
)

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_TFDS = REPO.parent / "shared" / "datasets" / "tensorflow_datasets"

from keras_selfie import presets  # noqa: E402

# The smallest pretrainer that keeps the full structure: ResNet-50 stages 1-3
# at 1/8 width (d = 128), one Transformer layer.
TINY = presets.get("tiny")["config"]
# Its backbone alone: the arguments every `Pretrainer` takes.
TINY_BACKBONE = {k: TINY[k] for k in ("image_size", "stem", "width")}
# Method -> its smallest arguments beside the tiny backbone, for the tests of
# every method but Selfie (method_conformance_test, visualization tests).
TINY_ARGS = {
    "rotation": {},
    # Colour dropping and all 8 neighbours: every random draw of the task.
    "relative_patch_location": {
        "color_guard": "drop", "all_neighbors": True, "head_hidden_dim": 16,
    },
    # The classifier that takes plain images: each copy among the 4 images
    # of its group of the batch (the parametric and memory-bank ones need
    # surrogate labels; exemplar_pretrainer_test checks them).
    "exemplar": {
        "classifier": "batch", "num_exemplars": 4,
        "transformations_per_image": 1,
    },
    "simclr": {},
    # The default 3x3 puzzles; a plain hidden layer (float32 XLA and eager
    # batch normalisation over 4 puzzles differ by up to 2e-4).
    "jigsaw": {
        "num_permutations": 10, "head_hidden_dim": 16,
        "head_batch_norm": False,
    },
    # Random blocks: the masks drawn in the step are what XLA and Mirrored
    # must reproduce (the central square draws nothing).
    "context_encoder": {"region": "random_blocks", "decoder_filters": 16},
    "super_resolution": {"decoder_filters": 16},
    # The paper's classification on P's own 8x8 grid (a 1x1 convolution).
    "colorization": {},
}
# The same, as the flags of the command line and of the scripts.
TINY_FLAGS = [
    "--width", str(TINY["width"]),
    "--num-layers", str(TINY["num_layers"]),
    "--num-heads", str(TINY["num_heads"]),
    "--intermediate-dim", str(TINY["intermediate_dim"]),
]


def load_example(name, folder="examples"):
    """Imports `<folder>/<name>.py` as a module, to call its `main()`."""
    path = REPO / folder / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def two_cpu_strategy():
    """One `MirroredStrategy` over the two logical CPUs, shared by all tests.

    Each strategy numbers its collective operations from the same start, and
    TensorFlow remembers an operation's dtype by that number for the whole
    process: a second strategy whose all-reduce number 100 is float32 fails
    after a first one's was float64. One shared strategy keeps counting.
    """
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


@pytest.fixture
def tiny_config():
    return dict(TINY)


@pytest.fixture
def tfds_data_dir():
    """The folder holding the real CIFAR-10 in TFDS format, or a skip."""
    path = os.environ.get("TFDS_DATA_DIR") or str(SHARED_TFDS)
    if not (pathlib.Path(path) / "cifar10").is_dir():
        pytest.skip(
            f"CIFAR-10 in TFDS format not found under {path}; set "
            "TFDS_DATA_DIR to a folder holding cifar10/ to run this test."
        )
    return path


def backbone_inputs(model, images, network="patch_network"):
    """Calls `model(images, training=False)` and returns what its backbone
    `model.patch_network` received (as NumPy) and the outputs.

    `network` names another attribute to watch, e.g. `"feature_map"` (P
    without its pooling, which the pixel-decoding tasks call).
    """
    import keras

    seen = []
    original = getattr(model, network)
    setattr(model, network, lambda x, training=None: (
        seen.append(keras.ops.convert_to_numpy(x)), original(x)
    )[1])
    try:
        outputs = model(images, training=False)
    finally:
        setattr(model, network, original)
    (inputs,) = seen
    return inputs, outputs


def uint8_images(count=3, seed=1):
    """`count` random uint8 32x32 RGB images."""
    import numpy as np

    return np.random.default_rng(seed).integers(
        0, 256, (count, 32, 32, 3), dtype=np.uint8
    )


# The longest test files, longest first. pytest-xdist hands the
# workers whole files (`--dist loadscope --no-loadscope-reorder` in
# pytest.ini: a file's module fixtures, such as a pretraining run, are made
# once) in this order, so that the workers end on short files together
# instead of one worker running a long file alone at the end; the files
# not listed keep their order after them.
RUN_FIRST = (
    "training/method_cifar10_test.py",
    "training/method_conformance_test.py",
    "training/cifar10_test.py",
    "training/distribution_test.py",
    "training/reproduce_table1_test.py",
    "cli/cli_test.py",
    "readme_test.py",
    "training/determinism_test.py",
    "training/compare_methods_test.py",
    "training/multi_worker_test.py",
    "tuning/hypermodel_test.py",
    "visualization/method_pictures_test.py",
    "models/saving_test.py",
)


def pytest_collection_modifyitems(config, items):
    def rank(item):
        path = item.path.relative_to(REPO / "tests").as_posix()
        return RUN_FIRST.index(path) if path in RUN_FIRST else len(RUN_FIRST)

    items.sort(key=rank)


