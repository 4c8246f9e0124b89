"""The evaluation protocol the example scripts share.

`reproduce_table1.py` (Selfie against training from scratch, the paper's
Table 1) and `compare_methods.py` (every registered method at one budget)
judge a pretrained `P` the same way, with the same code:

- `frozen_figures`: kNN and a linear probe of `P`'s frozen features on the
  same labeled images, at both batch-norm settings
  (`evaluation.batch_norm_settings`: the statistics `P` was trained with,
  and those of whole images), each metric at its better setting, so that
  a gain over random `P` is never an artefact of crippling the baseline.
- `finetune_run`: a ResNet-50 fine-tuned on a class-stratified label subset
  (`data.labeled_subset`), from `P` or from scratch, the subset's digest
  recorded so that both arms are seen to have had the same images;
  `mean_std` of the seeds' accuracies in percent.
- `ResultsFile`: the resumable `results.json` (finished stages kept, wall
  time summed over the runs that made it, other arguments refused).
- `machine`: what the run ran on.

The scripts import it by name: their folder is on `sys.path` when run as
`python examples/NAME.py`, and they put it there when imported otherwise.
"""

import hashlib
import json
import os
import pathlib
import platform
import time

import keras
import numpy as np
import tensorflow as tf

from keras_selfie import data
from keras_selfie import evaluation

NUM_CLASSES = 10
IMAGE_SIZE = 32


def machine():
    """The platform, CPUs, accelerators and library versions, as a dict."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "accelerators": [
            d.name for d in tf.config.list_physical_devices()
            if d.device_type != "CPU"
        ],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def machine_line(info):
    """`machine()` in words, for a report."""
    return (
        f"{info['platform']} ({info['processor']}, {info['usable_cpus']} "
        f"usable of {info['cpu_count']} CPUs, accelerators: "
        f"{', '.join(info['accelerators']) or 'none'})"
    )


class ResultsFile:
    """A `results.json` that a killed run continues where it stopped.

    `progress` is the file's content: `{}` for a new run, else what an
    earlier run with the same arguments saved (its finished stages, which
    the script skips). `save()` writes it atomically, with `wall_seconds`:
    this run's time since `start` added to that of the runs before.

    Args:
        path: the file.
        config: the run's arguments (JSON-able), saved as `config`.
        not_identity: the arguments that do not change what the run
            computes (output folder, verbosity, ...); a file whose other
            arguments differ raises `ValueError` rather than mixing two
            runs. An argument added since the file was written reads as
            unset (`None`) there.
        start: `time.time()` when the run started (default: now).
    """

    def __init__(self, path, config, not_identity=(), start=None):
        self.path = pathlib.Path(path)
        self.start = time.time() if start is None else start
        config = json.loads(json.dumps(config))
        self.progress = {}
        if self.path.exists():
            self.progress = json.loads(self.path.read_text())
            previous = self.progress.get("config", {})
            changed = sorted(
                key for key in previous.keys() | config.keys()
                if key not in not_identity
                and previous.get(key) != config.get(key)
            )
            if changed:
                raise ValueError(
                    f"{self.path} holds a run with other arguments "
                    f"({', '.join(changed)} differ); use another "
                    "--output-dir, or remove it to start over."
                )
        self.progress.setdefault("config", config)
        self.seconds_before = self.progress.get("wall_seconds", 0.0)

    def wall_seconds(self):
        """The wall time of this run and of those before it."""
        return self.seconds_before + time.time() - self.start

    def save(self):
        """Writes the file atomically (a kill never leaves half of it)."""
        self.progress["wall_seconds"] = round(self.wall_seconds(), 1)
        temporary = self.path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(self.progress, indent=2))
        os.replace(temporary, self.path)


def feature_figures(train_features, test_features, probe_epochs, seed):
    """kNN and linear-probe accuracy of `(features, labels)` pairs."""
    return {
        "knn_accuracy": float(evaluation.knn_accuracy(
            *train_features, *test_features)),
        "linear_probe_accuracy": evaluation.linear_probe_on_features(
            *train_features, *test_features, epochs=probe_epochs,
            num_classes=NUM_CLASSES, seed=seed,
        )["accuracy"],
    }


def frozen_figures(model, probe_train, test, probe_epochs, seed):
    """kNN, linear probe and feature health of a pretrainer's frozen `P`.

    At each batch-norm setting (`settings`: kNN, probe and
    `evaluation.feature_health` of the test features), the better setting
    per metric (`knn_accuracy` with `knn_setting`, likewise
    `linear_probe_accuracy`). `probe_train` is the probe's training set
    and the kNN memory bank; `test` the images classified.
    """
    entry = {"settings": {}}
    settings = evaluation.batch_norm_settings(model, probe_train)
    for setting, evaluated in settings.items():
        train_features = evaluation.extract_features(evaluated, probe_train)
        test_features = evaluation.extract_features(evaluated, test)
        entry["settings"][setting] = {
            **feature_figures(train_features, test_features, probe_epochs,
                              seed),
            **evaluation.feature_health(test_features[0]),
        }
    for metric in ("knn_accuracy", "linear_probe_accuracy"):
        best = max(settings, key=lambda k: entry["settings"][k][metric])
        entry[metric] = entry["settings"][best][metric]
        entry[metric.replace("accuracy", "setting")] = best
    return entry


def train_arrays(data_dir=None, split="train"):
    """The labeled CIFAR-10 `split` as `(images, labels)` arrays, the pool
    that `data.labeled_subset` draws the fine-tuning subsets from."""
    batches = list(
        data.load_tfds("cifar10", split, labeled=True, data_dir=data_dir)
        .batch(10_000).as_numpy_iterator()
    )
    return (np.concatenate([images for images, _ in batches]),
            np.concatenate([labels for _, labels in batches]))


def digest(images, labels):
    """A short hash of a labeled subset: equal digests, equal images."""
    sha = hashlib.sha1()
    sha.update(np.ascontiguousarray(images).tobytes())
    sha.update(np.ascontiguousarray(labels).astype("int64").tobytes())
    return sha.hexdigest()[:16]


def add_finetuning_arguments(parser):
    """The flags of the `finetune_*` settings `finetune_run` reads, and
    `--test-images`, `--run-eagerly`; all default to `None` (the preset's
    value)."""
    add = parser.add_argument
    add("--finetune-steps-per-epoch", type=int,
        help="default: one pass over the labeled subset")
    add("--finetune-batch-size", type=int)
    add("--finetune-learning-rate", type=float)
    add("--finetune-weight-decay", type=float)
    add("--finetune-warmup-epochs", type=int)
    add("--finetune-batch-norm-batches", type=int,
        help="training batches averaged into the batch-norm statistics "
        "before the test evaluation (0: Keras's moving averages)")
    add("--test-images", type=int,
        help="first N test images to evaluate on (default: all 10,000)")
    add("--run-eagerly", dest="run_eagerly", action="store_true",
        default=None, help="train eagerly (no graph tracing)")
    add("--no-run-eagerly", dest="run_eagerly", action="store_false")


def finetune_run(args, pretrainer, subset, test, seed, epochs,
                 from_scratch, jit_compile="auto"):
    """One fine-tuning run of `evaluation.finetune` on a labeled subset.

    From `pretrainer`'s `P`, or from scratch (the same ResNet-50, at the
    pretrainer's stem and width). The settings are `args`'s `finetune_*`
    attributes (batch size, steps per epoch or `None` for one pass over
    the subset, learning rate, weight decay, warm-up epochs, batch-norm
    recalibration batches) and `run_eagerly`; `seed` fixes the fresh
    layers' initialisation and the data order and augmentation.

    Returns:
        A dict: `accuracy` and `loss` on `test`, `num_labeled_images`,
        `subset_digest`, `steps`, `epochs` and `seconds`.
    """
    images, labels = subset
    dataset = data.make_dataset(
        data.from_arrays(images, labels),
        args.finetune_batch_size,
        augment=data.finetuning_augmentation(IMAGE_SIZE),
        repeat=True,
        seed=seed,
    )
    steps = args.finetune_steps_per_epoch or max(
        len(labels) // args.finetune_batch_size, 1
    )
    start = time.time()
    result = evaluation.finetune(
        None if from_scratch else pretrainer,
        dataset,
        test,
        num_classes=NUM_CLASSES,
        epochs=epochs,
        from_scratch=from_scratch,
        stem=pretrainer.stem if from_scratch else None,
        width=pretrainer.width if from_scratch else None,
        learning_rate=args.finetune_learning_rate,
        nesterov=True,
        weight_decay=args.finetune_weight_decay,
        warmup_epochs=min(args.finetune_warmup_epochs, epochs - 1),
        steps_per_epoch=steps,
        verbose=0,
        run_eagerly=args.run_eagerly,
        jit_compile=jit_compile,
        seed=seed,  # the fresh layers' initialisation
        batch_norm_batches=args.finetune_batch_norm_batches,
    )
    return {
        "accuracy": result["accuracy"],
        "loss": result["loss"],
        "num_labeled_images": int(len(labels)),
        "subset_digest": digest(images, labels),
        "steps": steps * epochs,
        "epochs": epochs,
        "seconds": round(time.time() - start, 1),
    }


def mean_std(values):
    """Mean and sample standard deviation (0 for one value) of accuracies,
    in percent."""
    values = np.asarray(values, dtype="float64") * 100
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return float(values.mean()), std
