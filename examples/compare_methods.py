"""Every registered pretext method on CIFAR-10 at one budget, side by side.

Each method of `keras_selfie.methods` (the registry: a method added there
is compared too) pretrains the same backbone `P` (ResNet-50 stages 1-3 at
the preset's width) on the unlabeled CIFAR-10 train split, from the same
seed, on the same batches (the same number of images seen, in the same
order). Only what `METHOD_SETTINGS` lists differs between methods: the
optimizer, its peak learning rate and the method's own arguments. Then,
for each method:

1. Pretext task: its own figure on held-out test images (Selfie's patch
   accuracy, the classification tasks' pretext accuracy, SimCLR's
   contrastive accuracy, the reconstruction tasks' error), beside its
   reference: the accuracy of a uniform guess (chance), or the error of
   handing back what `P` saw (the trivial baseline), with
   `evaluation.pretext_evaluation`. Batch normalisation is recalibrated on
   a few training batches first, as the short runs leave its moving
   averages near their initial values (which is why this stage runs last).
2. Step time: the median time of a pretraining step (`training.StepTimer`:
   the first, compiling step of each `fit` left out, so that neither
   tracing nor a pause of the process counts), as images/s (input images;
   a method may make several views of each).
3. Frozen features: the linear probe and kNN accuracy of pretrained `P`
   minus those of random `P` (the same seed's untrained `P`: the run's own
   starting point), on the same labeled images, each `P` at its better
   batch-norm setting (`evaluation_protocol.frozen_figures`).
4. Fine-tuning: a ResNet-50 from `P` on a class-stratified 5% of the
   labels, one run per seed (mean +- std); the same ResNet-50 from scratch
   on the same subsets, once per seed, is the reference row.

It writes, in `--output-dir`: `results.json` (every figure, every run,
resumable), `zoo.md` (the table sorted by fine-tuning accuracy, the chart,
the per-method settings, the command, the machine, the wall time) and
`zoo.png` (bar chart: linear probe and kNN gains, fine-tuning accuracy,
with error bars).

    python examples/compare_methods.py --preset cpu    # ~1 h, 2 CPU cores
    python examples/compare_methods.py --preset paper  # GPU/TPU
    python examples/compare_methods.py --preset smoke  # ~2 min
    python examples/compare_methods.py --methods rotation jigsaw

The cpu preset's estimate is printed at the start (`estimate_seconds`, from
costs measured on this project's 2-core machine).

A killed run started again with the same arguments continues: finished
methods and stages (pretraining, which also resumes from its last epoch;
pretext; frozen features; each fine-tuning run) are kept, and a method
registered since is run and added to the table. Other arguments in the same
folder are refused (`ValueError`); `--methods`, `--output-dir`,
`--data-dir`, `--page` and `--verbose` may change.
"""

import argparse
import datetime
import hashlib
import json
import os
import pathlib
import shlex
import sys
import types

import keras
import numpy as np

from keras_selfie import data
from keras_selfie import evaluation
from keras_selfie import methods
from keras_selfie import presets
from keras_selfie import training
from keras_selfie.visualization import figures

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import evaluation_protocol as protocol  # noqa: E402

# Method -> how it pretrains, beside the budget all methods share (the
# preset's width, batch size, number of images, seed and data order): the
# optimizer, its peak learning rate (linear warm-up over the preset's
# warm-up epochs, then cosine decay to 0) and the method's own arguments.
# They are the settings under which each method learns on CIFAR-10 with
# this backbone in short runs (`tests/training/method_cifar10_test.py`:
# held-out pretext accuracy above chance, reconstruction error below the
# trivial baseline); `why` says where a choice comes from. `paper`, where
# given, replaces them in the `paper` preset (long runs on an accelerator,
# where the papers' own settings apply). A registered method without an
# entry pretrains with `DEFAULT_SETTINGS`, which the table marks.
METHOD_SETTINGS = {
    "selfie": dict(
        optimizer="sgd", learning_rate=0.1, config={},
        why="the Table 1 presets' SGD at 0.1; the preset network's "
        "formulation",
    ),
    "rotation": dict(
        optimizer="sgd", learning_rate=0.05, config={},
        why="all four rotations of every image in the batch",
    ),
    # One random pair per image learns too slowly on 8x8 patches for a
    # short run; AdamW climbs faster than SGD here.
    "relative_patch_location": dict(
        optimizer="adamw", learning_rate=0.003,
        config={"all_neighbors": True},
        why="all 8 neighbour pairs of every image; AdamW",
    ),
    # The classifier that takes unlabeled images: each copy among the 16
    # images of its group (the parametric classifier needs surrogate labels
    # in the data).
    "exemplar": dict(
        optimizer="sgd", learning_rate=0.05,
        config={"classifier": "batch", "num_exemplars": 16,
                "transformations_per_image": 2},
        why="instance classification among groups of 16 images of the "
        "batch, 2 copies each",
    ),
    # 2x2 puzzles of 13x13 tiles and 10 permutations learn in tens of steps;
    # the default 3x3 grid of 8x8 tiles needs about 150 steps to leave
    # chance.
    "jigsaw": dict(
        optimizer="sgd", learning_rate=0.05,
        config={"grid_size": 2, "num_permutations": 10},
        why="2x2 puzzles, 10 permutations (the 3x3 default is slow to "
        "leave chance)",
        paper=dict(config={}),
    ),
    # Crops and flips only: with the paper's colour jitter and colour drop
    # short runs do not beat an untrained P at matching views.
    "simclr": dict(
        optimizer="sgd", learning_rate=0.1,
        config={"color_strength": 0, "grayscale_probability": 0},
        why="crops and flips, no colour distortion (short runs)",
        paper=dict(config={}),
    ),
    "context_encoder": dict(
        optimizer="sgd", learning_rate=0.1, config={"decoder_filters": 16},
        why="a light decoder (16 filters)",
    ),
    # The L2 gradients of so small a residual need AdamW's scaling.
    "super_resolution": dict(
        optimizer="adamw", learning_rate=0.01,
        config={"decoder_filters": 16},
        why="a light decoder (16 filters); AdamW",
    ),
    # The short CIFAR-10 test run's setting (SGD at 0.1 from its defaults).
    "colorization": dict(
        optimizer="sgd", learning_rate=0.1, config={},
        why="the paper's classification over 229 ab bins, rebalanced",
    ),
}
DEFAULT_SETTINGS = dict(
    optimizer="sgd", learning_rate=0.1, config={},
    why="no entry in METHOD_SETTINGS: SGD at 0.1, the method's defaults",
)

# The budgets. `network`: the `keras_selfie.presets` preset whose
# configuration every pretrainer is built from (its backbone, and Selfie's
# attention pooling), at `width`. Pretraining: `epochs` of
# `steps_per_epoch` steps (None: one pass over the images) of `batch_size`
# images, drawn from the first `pretraining_images` unlabeled train images
# (None: all 50,000). Pretext figure: `pretext_images` test images in
# batches of `batch_size`, after `recalibration_batches` training batches
# of batch-norm statistics (0: none). Frozen features: `probe_train_images`
# labeled train images (probe training set and kNN memory bank), the first
# `test_images` test images (None: all) classified, `probe_epochs`.
# Fine-tuning: `fraction` of the labels of the first `label_pool_images`
# train images (None: all 50,000), `seeds` runs, `finetune_*` as in
# `examples/reproduce_table1.py`, evaluated on the same test images.
# `run_eagerly` and `jit_compile` apply to pretraining and fine-tuning:
# short CPU runs are dominated by tracing, which XLA lengthens.
_CPU = dict(
    description="2 CPU cores, about an hour for 8-9 methods: P at 1/8 "
    "width, 19,200 images seen (300 steps of 64), fine-tuning 3 passes "
    "over 5% of the labels, 3 seeds",
    network="tiny", width=0.125, settings="short",
    pretraining_images=None,
    batch_size=64, epochs=3, steps_per_epoch=100, warmup_epochs=0,
    weight_decay=1e-4,
    pretext_images=512, recalibration_batches=10,
    probe_train_images=2_000, probe_epochs=50, test_images=1_000,
    fraction=0.05, seeds=3, label_pool_images=None,
    # 3 passes over the 2,500 labeled images: 117 steps of 64. The learning
    # rate of the Table 1 `cpu` preset (at 0.1, runs from pretrained P
    # diverged there).
    finetune_epochs=3, finetune_steps_per_epoch=None,
    finetune_batch_size=64, finetune_learning_rate=0.02,
    finetune_weight_decay=5e-4, finetune_warmup_epochs=1,
    finetune_batch_norm_batches=20,
    run_eagerly=False, jit_compile=False,
)
PRESETS = {
    "smoke": dict(
        _CPU,
        description="every stage in seconds per method; numbers mean "
        "nothing (the test)",
        width=0.0625, pretraining_images=256,
        batch_size=16, epochs=1, steps_per_epoch=2,
        pretext_images=16, recalibration_batches=1,
        probe_train_images=32, probe_epochs=1, test_images=32,
        seeds=1, label_pool_images=640,
        finetune_epochs=1, finetune_steps_per_epoch=1,
        finetune_batch_size=16, finetune_warmup_epochs=0,
        finetune_batch_norm_batches=1,
        run_eagerly=True,
    ),
    "cpu": _CPU,
    "paper": dict(
        _CPU,
        description="an accelerator: full-width P, the paper's network, "
        "100 passes over the 50,000 images, fine-tuning as the "
        "paper_cifar10 preset (200 epochs), 3 seeds",
        network="paper_cifar10", width=1.0, settings="paper",
        batch_size=256, epochs=100, steps_per_epoch=None, warmup_epochs=5,
        pretext_images=2_560, recalibration_batches=0,
        probe_train_images=50_000, probe_epochs=100, test_images=None,
        finetune_epochs=200, finetune_batch_size=128,
        finetune_learning_rate=0.1, finetune_warmup_epochs=5,
        finetune_batch_norm_batches=0,
        jit_compile="auto",
    ),
}

# Measured on the 2-core CPU machine of this project (shared with other
# jobs at the time: load average 3-7), P at width 0.125, batches of 64,
# graph mode without XLA: the median seconds of a pretraining step per
# method (`StepTimer`, 8-step runs), and the other stages' costs. Checked
# against a short run of the cpu preset (jigsaw, 20 pretraining steps, one
# seed, 500 probe and test images): 196 s estimated, 205 s taken.
PRETRAIN_STEP_SECONDS = {
    "selfie": 0.27,
    "rotation": 0.9,
    "relative_patch_location": 0.26,
    "exemplar": 0.35,
    "jigsaw": 0.2,
    "simclr": 0.5,
    "context_encoder": 0.27,
    "super_resolution": 0.25,
}
CPU_SECONDS = {
    "unknown_method_step": 0.5,  # a method not measured
    "pretrain_trace": 20.0,  # first step, per method
    "finetune_step": 0.27,
    "finetune_trace": 32.0,  # first step, per run
    # Per image: batch-norm recalibration (training mode), feature
    # extraction (inference), pretext evaluation.
    "recalibrate_image": 0.0047,
    "extract_image": 0.003,
    "probe_image_epoch": 4e-5,  # linear probe, per image and epoch
    # Per P evaluated (its copy, the probes' graphs), per method (building
    # and saving models, input pipelines), once (the labeled images).
    "frozen_overhead": 8.0,
    "method_overhead": 10.0,
    "run_overhead": 20.0,
}
TRAIN_SIZE = 50_000
TEST_SIZE = 10_000

# Arguments that do not change what a run computes: a run started again
# with other values of these continues the results file.
NOT_IDENTITY = ("methods", "output_dir", "data_dir", "page", "verbose")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--preset", choices=sorted(PRESETS), default="cpu",
        help="; ".join(f"{name}: {p['description']}"
                       for name, p in PRESETS.items()))
    add("--methods", nargs="+", metavar="METHOD",
        help="the methods to run (default: every registered one: "
        f"{', '.join(methods.names())})")
    add("--output-dir", default="runs/compare_methods")
    add("--page", metavar="FILE",
        help="also write the markdown report there (e.g. docs/ZOO.md), "
        "its links relative to it")
    add("--data-dir", default=None,
        help="TFDS data folder (default: $TFDS_DATA_DIR or TFDS's own)")
    add("--seed", type=int, default=0,
        help="seed of every pretraining run and of random P")
    add("--verbose", type=int, default=2, help="verbosity of fit")
    # The preset's values, each overridable.
    add("--width", type=float, help="width of P (1.0 = ResNet-50)")
    add("--pretraining-images", type=int,
        help="first N train images pretrained on (unset: all 50,000)")
    add("--batch-size", type=int, help="pretraining batch, every method")
    add("--epochs", type=int, help="pretraining epochs")
    add("--steps-per-epoch", type=int,
        help="pretraining steps per epoch (unset: one pass)")
    add("--warmup-epochs", type=int)
    add("--weight-decay", type=float, help="pretraining weight decay")
    add("--pretext-images", type=int,
        help="held-out test images of the pretext figure")
    add("--recalibration-batches", type=int,
        help="training batches of batch-norm statistics before the "
        "pretext figure (0: none)")
    add("--probe-train-images", type=int,
        help="labeled train images of the linear probe and kNN bank")
    add("--probe-epochs", type=int)
    add("--fraction", type=float, help="share of the labels fine-tuned on")
    add("--seeds", type=int, help="fine-tuning runs: seeds 0 .. N-1")
    add("--label-pool-images", type=int,
        help="first N train images the labeled subsets are drawn from "
        "(unset: all 50,000)")
    add("--finetune-epochs", type=int)
    protocol.add_finetuning_arguments(parser)
    args = parser.parse_args(argv)
    preset = PRESETS[args.preset]
    for key, value in preset.items():
        if key != "description" and getattr(args, key, None) is None:
            setattr(args, key, value)
    registered = methods.names()
    args.methods = list(args.methods or registered)
    unknown = [name for name in args.methods if name not in registered]
    if unknown:
        parser.error(f"unknown method(s) {unknown}; registered: "
                     f"{registered}")
    return args


def settings_of(method, args):
    """The method's `METHOD_SETTINGS` entry for the preset (`paper`
    replacing what it names in the `paper` preset), JSON-able."""
    entry = dict(METHOD_SETTINGS.get(method, DEFAULT_SETTINGS))
    if args.settings == "paper":
        entry.update(entry.get("paper", {}))
    entry.pop("paper", None)
    entry["tuned"] = method in METHOD_SETTINGS
    return json.loads(json.dumps(entry))


def build(args, method, settings):
    """A fresh pretrainer of the method: the preset's network at the
    shared width and seed, the method's arguments."""
    return training.build_pretrainer(
        args.network, method, seed=args.seed, width=args.width,
        **settings["config"],
    )


def estimate_seconds(args, names):
    """The time on 2 CPU cores, from `PRETRAIN_STEP_SECONDS` and
    `CPU_SECONDS` (width 0.125, batch 64, graph mode), scaled by the width
    squared and the batch size; eager runs (smoke) trace nothing."""
    seconds = dict(CPU_SECONDS)
    if args.run_eagerly:
        seconds.update(pretrain_trace=0.0, finetune_trace=0.0)
    scale = (args.width / 0.125) ** 2
    steps = args.epochs * (
        args.steps_per_epoch
        or (args.pretraining_images or TRAIN_SIZE) // args.batch_size
    )
    pretrain = sum(
        steps * PRETRAIN_STEP_SECONDS.get(
            name, seconds["unknown_method_step"]
        ) * scale * args.batch_size / 64 + seconds["pretrain_trace"]
        for name in names
    )
    test = args.test_images or TEST_SIZE
    recalibrated = min(args.probe_train_images, 50 * 64)
    per_model = scale * (
        recalibrated * seconds["recalibrate_image"]
        + 2 * (args.probe_train_images + test) * seconds["extract_image"]
    ) + 2 * args.probe_train_images * args.probe_epochs * seconds[
        "probe_image_epoch"
    ] + seconds["frozen_overhead"]
    pretext = scale * (
        args.pretext_images
        + args.recalibration_batches * args.batch_size
    ) * seconds["recalibrate_image"]
    # Random P is evaluated once for the methods whose untrained P is the
    # same (with one seed, all but Selfie's).
    random_ps = int("selfie" in names) + int(any(
        name != "selfie" for name in names))
    evaluation_seconds = (
        (len(names) + random_ps) * per_model
        + len(names) * (pretext + seconds["method_overhead"])
        + seconds["run_overhead"]
    )
    labeled = round(args.fraction * (
        args.label_pool_images or TRAIN_SIZE
    ))
    finetune_steps = args.finetune_epochs * (
        args.finetune_steps_per_epoch
        or max(labeled // args.finetune_batch_size, 1)
    )
    per_run = (
        finetune_steps * seconds["finetune_step"] * scale
        * args.finetune_batch_size / 64
        + seconds["finetune_trace"]
        + scale * (
            args.finetune_batch_norm_batches * args.finetune_batch_size
            * seconds["recalibrate_image"]
            + test * seconds["extract_image"]
        )
    )
    finetune = (len(names) + 1) * args.seeds * per_run
    return {
        "pretrain": round(pretrain),
        "evaluation": round(evaluation_seconds),
        "finetune": round(finetune),
        "total": round(pretrain + evaluation_seconds + finetune),
    }


def weights_digest(model):
    """A short hash of a model's weights: equal digests, equal weights."""
    sha = hashlib.sha1()
    for weight in model.get_weights():
        sha.update(np.ascontiguousarray(weight).tobytes())
    return sha.hexdigest()[:16]


class Inputs:
    """The CIFAR-10 images every method is measured on, loaded once, on
    first use (a run that only rewrites the table loads nothing)."""

    def __init__(self, args):
        self.args = args
        self._cache = {}

    def _get(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def load(self, split, labeled=False):
        return data.load_tfds("cifar10", split, labeled=labeled,
                              data_dir=self.args.data_dir)

    @property
    def test_split(self):
        images = self.args.test_images
        return f"test[:{images}]" if images else "test"

    def pretraining(self):
        count = self.args.pretraining_images
        return self._get("pretraining", lambda: self.load(
            f"train[:{count}]" if count else "train"))

    def probe_train(self):
        return self._get("probe_train", lambda: self.load(
            f"train[:{self.args.probe_train_images}]", labeled=True))

    def test(self):
        """The labeled test images, unbatched (frozen features)."""
        return self._get("test", lambda: self.load(self.test_split,
                                                   labeled=True))

    def test_batches(self):
        """The same, in batches (fine-tuning's evaluation)."""
        return self._get("test_batches", lambda: data.make_dataset(
            self.test(), 256, training=False))

    def pretext_batches(self):
        """Held-out test images in whole pretraining batches."""
        args = self.args
        count = args.pretext_images // args.batch_size * args.batch_size
        return self._get("pretext", lambda: data.make_dataset(
            self.load(f"test[:{count}]"), args.batch_size, training=False))

    def recalibration_batches(self):
        args = self.args
        count = args.recalibration_batches * args.batch_size
        return self._get("recalibration", lambda: data.make_dataset(
            self.load(f"train[:{count}]"), args.batch_size,
            seed=args.seed))

    def label_pool(self):
        pool = self.args.label_pool_images
        return self._get("pool", lambda: protocol.train_arrays(
            self.args.data_dir, f"train[:{pool}]" if pool else "train"))

    def subset(self, seed):
        """Seed's class-stratified share of the labels: the same images
        for every method and for scratch."""
        return self._get(("subset", seed), lambda: data.labeled_subset(
            self.label_pool(), self.args.fraction, seed=seed)[0])


def pretrain(args, method, settings, inputs, run_dir):
    """One method's pretraining (resumable: a killed run continues at its
    last epoch), timed step by step. The model is saved in `run_dir`, as
    `model_file` says, where a later call loads it from."""
    run_dir.mkdir(parents=True, exist_ok=True)
    timer = training.StepTimer(run_dir / "step_seconds.json")
    run = training.run_pretraining(
        inputs.pretraining(),
        run_dir,
        preset=args.network,
        method=method,
        config={**settings["config"], "width": args.width},
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        optimizer=settings["optimizer"],
        learning_rate=settings["learning_rate"],
        weight_decay=args.weight_decay,
        warmup_epochs=args.warmup_epochs,
        seed=args.seed,
        monitors=[timer],
        checkpoint=False,
        jit_compile=args.jit_compile,
        run_eagerly=args.run_eagerly,
        verbose=args.verbose,
        data_name="CIFAR-10",
    )
    median = timer.median_step_seconds()
    last = {
        key: values[-1] for key, values in run.history.items()
        if key != "epoch" and values and values[-1] is not None
    }
    return run.pretrainer, {
        "epochs": run.epochs,
        "steps_per_epoch": run.steps_per_epoch,
        "steps": run.steps,
        "batch_size": run.batch_size,
        "images_seen": run.steps * run.batch_size,
        "resumed_at_epoch": run.resumed_at_epoch,
        "model_file": run.files["the pretrained model"],
        "fit_seconds": round(run.seconds, 1),
        "timed_steps": len(timer.step_seconds()),
        "median_step_seconds": median,
        "images_per_second": (
            None if median is None else run.batch_size / median
        ),
        # Of the training batches (augmented), the last epoch's mean.
        "last_epoch": last,
    }


def pretext_figure(args, model, inputs):
    """The task's figure on held-out images, after `model`'s batch-norm
    statistics are recomputed on training batches (the model's own: the
    method's last stage)."""
    if args.recalibration_batches:
        evaluation.recalibrate_batch_norm(
            model, inputs.recalibration_batches(),
            args.recalibration_batches,
        )
    return evaluation.pretext_evaluation(model, inputs.pretext_batches())


def finetune(args, inputs, pretrainer, seed, from_scratch):
    run = protocol.finetune_run(
        args, pretrainer, inputs.subset(seed), inputs.test_batches(), seed,
        args.finetune_epochs, from_scratch=from_scratch,
        jit_compile=args.jit_compile,
    )
    run["seed"] = seed
    return run


def run_method(args, method, inputs, results, output_dir):
    """Every stage of one method not yet in `results`, each saved when
    done."""
    progress = results.progress
    settings = settings_of(method, args)
    entry = progress["methods"].setdefault(method, {"settings": settings})
    if entry["settings"] != settings:
        raise ValueError(
            f"{results.path} holds a {method} run with other settings "
            f"({entry['settings']}) than METHOD_SETTINGS now gives "
            f"({settings}); use another --output-dir, or remove the "
            "folder to start over."
        )
    runs = entry.setdefault("finetune", [])
    missing_seeds = [seed for seed in range(args.seeds)
                     if not any(run["seed"] == seed for run in runs)]
    if "diverged" in entry or ("pretext" in entry and not missing_seeds):
        return
    run_dir = output_dir / "methods" / method
    if "pretraining" in entry:
        trained = keras.models.load_model(
            output_dir / entry["pretraining"]["model_file"], compile=False
        )
    else:
        arguments = settings["config"] or "its defaults"
        print(f"\n== {method}: pretraining ({settings['optimizer']} at "
              f"{settings['learning_rate']}, {arguments})")
        try:
            trained, entry["pretraining"] = pretrain(
                args, method, settings, inputs, run_dir
            )
        except training.DivergenceError as error:
            # The same seed and settings would diverge again: the method
            # is reported as such, and the others run.
            print(f"  {method} diverged: {error}")
            entry["diverged"] = str(error)
            results.save()
            return
        entry["pretraining"]["model_file"] = str(pathlib.Path(
            entry["pretraining"].pop("model_file")).relative_to(output_dir))
        results.save()
    if "frozen" not in entry:
        random_p = build(args, method, settings)
        digest = weights_digest(random_p.feature_extractor())
        if digest not in progress["random_p"]:
            progress["random_p"][digest] = protocol.frozen_figures(
                random_p, inputs.probe_train(), inputs.test(),
                args.probe_epochs, args.seed,
            )
        entry["frozen"] = {
            "pretrained": protocol.frozen_figures(
                trained, inputs.probe_train(), inputs.test(),
                args.probe_epochs, args.seed,
            ),
            "random_p": digest,
        }
        results.save()
    for seed in missing_seeds:
        runs.append(finetune(args, inputs, trained, seed,
                             from_scratch=False))
        runs.sort(key=lambda run: run["seed"])
        results.save()
    # Last: it recomputes the model's batch-norm statistics.
    if "pretext" not in entry:
        entry["pretext"] = pretext_figure(args, trained, inputs)
        results.save()
    pretext = entry["pretext"]
    print(f"  {method}: {pretext['metric']} {pretext['value']:.4f} "
          f"(baseline {_number(pretext['baseline'], '.4f')}), "
          f"{_number(entry['pretraining']['images_per_second'], '.0f')} "
          "images/s, fine-tuning "
          + " ".join(f"{run['accuracy']:.3f}" for run in runs))


def run_scratch(args, inputs, results):
    """The reference: the same ResNet-50 from scratch, once per seed."""
    runs = results.progress.setdefault("scratch", [])
    reference = None
    for seed in range(args.seeds):
        if any(run["seed"] == seed for run in runs):
            continue
        if reference is None:
            print("\n== scratch: the ResNet-50 without pretraining")
            # From scratch, only the network's stem and width are read.
            reference = types.SimpleNamespace(
                stem=presets.get(args.network)["config"]["stem"],
                width=args.width,
            )
        runs.append(finetune(args, inputs, reference, seed,
                             from_scratch=True))
        runs.sort(key=lambda run: run["seed"])
        results.save()


def _number(value, spec):
    return "-" if value is None else format(value, spec)


def table_rows(progress, seeds):
    """The table: one row per method whose stages are all done, and the
    scratch row, sorted by fine-tuning accuracy (best first)."""
    rows = []
    for method, entry in progress["methods"].items():
        runs = entry.get("finetune", [])
        if len(runs) < seeds or "pretext" not in entry:
            continue
        pretrained = entry["frozen"]["pretrained"]
        random_p = progress["random_p"][entry["frozen"]["random_p"]]
        mean, std = protocol.mean_std([run["accuracy"] for run in runs])
        row = {
            "method": method,
            "pretext": entry["pretext"],
            "images_per_second": entry["pretraining"]["images_per_second"],
            "finetune_accuracies": [run["accuracy"] for run in runs],
            "finetune_mean": mean,
            "finetune_std": std,
        }
        for metric in ("linear_probe", "knn"):
            key = f"{metric}_accuracy"
            row[metric] = {
                "pretrained": pretrained[key],
                "random": random_p[key],
                "delta": 100 * (pretrained[key] - random_p[key]),
            }
        rows.append(row)
    scratch = progress.get("scratch", [])
    if len(scratch) >= seeds:
        mean, std = protocol.mean_std([run["accuracy"] for run in scratch])
        rows.append({
            "method": "scratch",
            "finetune_accuracies": [run["accuracy"] for run in scratch],
            "finetune_mean": mean,
            "finetune_std": std,
        })
        for row in rows:
            row["vs_scratch"] = row["finetune_mean"] - mean
    rows.sort(key=lambda row: (-row["finetune_mean"], row["method"]))
    return rows


def pretext_cells(pretext):
    # Entries written before `trivial_answer` existed name no answer.
    kind = pretext.get("trivial_answer") or pretext["baseline_kind"] or ""
    return (
        f"{pretext['metric']} {pretext['value']:.4f}",
        f"{_number(pretext['baseline'], '.4f')} {kind}".strip(),
    )


def make_table(rows):
    lines = [
        "| method | pretext (held-out) | chance / baseline | images/s | "
        "linear probe - random P | kNN - random P | fine-tune (%) | "
        "- scratch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        finetune = f"{row['finetune_mean']:.1f} +- {row['finetune_std']:.1f}"
        versus = _number(row.get("vs_scratch"), "+.1f")
        if row["method"] == "scratch":
            cells = ["**scratch** (no pretraining)", "-", "-", "-", "-",
                     "-", finetune, versus]
        else:
            cells = [
                row["method"], *pretext_cells(row["pretext"]),
                _number(row["images_per_second"], ".0f"),
                *(
                    f"{row[m]['delta']:+.1f} ({100 * row[m]['pretrained']:.1f}"
                    f" vs {100 * row[m]['random']:.1f})"
                    for m in ("linear_probe", "knn")
                ),
                finetune, versus,
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def diverged_line(progress):
    """The methods whose pretraining diverged (not in the table)."""
    diverged = [f"{method} ({entry['diverged'].split('. ')[0]})"
                for method, entry in progress["methods"].items()
                if "diverged" in entry]
    if not diverged:
        return ""
    return ("Pretraining diverged (left out of the table): "
            + "; ".join(diverged) + ".\n\n")


def settings_table(progress):
    lines = ["| method | optimizer | learning rate | arguments | why |",
             "|---|---|---|---|---|"]
    for method, entry in progress["methods"].items():
        settings = entry["settings"]
        arguments = ", ".join(f"{k}={v!r}" for k, v in
                              settings["config"].items()) or "defaults"
        lines.append(f"| {method} | {settings['optimizer']} | "
                     f"{settings['learning_rate']:g} | {arguments} | "
                     f"{settings['why']} |")
    return "\n".join(lines)


def standard_error(accuracies, count):
    """Binomial standard error (in points) of a difference of two
    accuracies, each over `count` test images."""
    return 100 * float(np.sqrt(sum(a * (1 - a) / count
                                   for a in accuracies)))


def plot(rows, test_count, path):
    """Frozen-feature gains (left) and fine-tuning accuracy (right) per
    method, in the table's order, with error bars."""
    figure = figures.new_figure(11, 4.5)
    frozen_axes, finetune_axes = figure.subplots(1, 2)
    methods_rows = [row for row in rows if row["method"] != "scratch"]
    positions = np.arange(len(methods_rows))
    for offset, metric, label in ((-0.2, "linear_probe", "linear probe"),
                                  (0.2, "knn", "kNN")):
        frozen_axes.bar(
            positions + offset,
            [row[metric]["delta"] for row in methods_rows],
            0.4,
            yerr=[standard_error((row[metric]["pretrained"],
                                  row[metric]["random"]), test_count)
                  for row in methods_rows],
            capsize=3, label=label,
        )
    frozen_axes.axhline(0, color="black", linewidth=0.8)
    frozen_axes.set_xticks(positions, [row["method"] for row in
                                       methods_rows],
                           rotation=45, ha="right")
    frozen_axes.set_ylabel("pretrained P - random P (points)")
    frozen_axes.set_title("Frozen features")
    frozen_axes.legend()
    positions = np.arange(len(rows))
    finetune_axes.bar(
        positions, [row["finetune_mean"] for row in rows], 0.6,
        yerr=[row["finetune_std"] for row in rows], capsize=3,
        color=["tab:gray" if row["method"] == "scratch" else "tab:green"
               for row in rows],
    )
    for row in rows:
        if row["method"] == "scratch":
            finetune_axes.axhline(row["finetune_mean"], color="tab:gray",
                                  linestyle="--", linewidth=0.8)
    finetune_axes.set_xticks(positions, [row["method"] for row in rows],
                             rotation=45, ha="right")
    finetune_axes.set_ylabel("test accuracy (%), mean +- std over seeds")
    finetune_axes.set_title("Fine-tuning")
    figures.save_figure(figure, path)


def report(args, progress, info, seconds, command, page_dir):
    """The markdown page (the chart's link relative to `page_dir`)."""
    rows = progress["table"]
    pretraining = next(iter(progress["methods"].values()), {}).get(
        "pretraining", {})
    link = os.path.relpath(pathlib.Path(args.output_dir) / "zoo.png",
                           page_dir)
    estimate = progress["estimated_seconds"]["total"]
    test = args.test_images or TEST_SIZE
    return f"""# Every method side by side on CIFAR-10 (preset `{args.preset}`)

Every method pretrains the same P (ResNet-50 stages 1-3 at width
{args.width}, the `{args.network}` network) from seed {args.seed} on the
same {pretraining.get('images_seen', '?')} unlabeled CIFAR-10 train images
({pretraining.get('steps', '?')} steps of {args.batch_size}). Sorted by
fine-tuning accuracy.

{make_table(rows)}

![Frozen-feature gains and fine-tuning accuracy per method]({link})

- **pretext (held-out)**: the task's own figure on {progress['pretext_images']}
  test images (batches of {args.batch_size}, batch norm recalibrated on
  {args.recalibration_batches} training batches): an accuracy, or a
  reconstruction or colour error (lower is better); beside it the
  accuracy of a uniform guess (chance), or the error of an answer that
  needs no learning: handing back what P saw (input back), or the
  untrained colorizer's one colour everywhere (prior colour).
- **images/s**: pretraining images per second, the batch over the median
  step time (the first step of each run, tracing, left out).
- **linear probe / kNN - random P**: accuracy (%) of pretrained P minus
  that of the same seed's untrained P on the same images
  ({args.probe_train_images} labeled train images, {test} test images),
  each P at its better batch-norm setting; (pretrained vs random). The
  chart's error bars: binomial standard error of the difference.
- **fine-tune**: ResNet-50 from P on a class-stratified {args.fraction:.0%}
  of the labels, {args.finetune_epochs} epoch(s), test accuracy on the same
  {test} images, mean +- std over {args.seeds} seed(s) (the same subsets
  for every row); **scratch**: the same network and runs without
  pretraining. **- scratch**: the difference of the means.

{diverged_line(progress)}## Per-method settings

{settings_table(progress)}

Command: `{command}`

Machine: {protocol.machine_line(info)}.

Wall time: {seconds / 60:.1f} min (estimated {estimate / 60:.0f} min on 2
CPU cores).
"""


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    output_dir = pathlib.Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    # The methods run are chosen on each call; each has its entry.
    config = {k: v for k, v in vars(args).items() if k != "methods"}
    results = protocol.ResultsFile(output_dir / "results.json", config,
                                   NOT_IDENTITY)
    progress = results.progress
    progress.setdefault("methods", {})
    progress.setdefault("random_p", {})
    info = protocol.machine()
    estimate = estimate_seconds(args, args.methods)
    print(f"Preset {args.preset!r}, {len(args.methods)} methods; estimated "
          f"time on 2 CPU cores: {estimate['total'] / 60:.0f} min "
          f"(pretraining {estimate['pretrain'] / 60:.0f}, frozen features "
          f"and pretext {estimate['evaluation'] / 60:.0f}, fine-tuning "
          f"{estimate['finetune'] / 60:.0f}). Machine: "
          f"{protocol.machine_line(info)}.")
    done = [m for m in args.methods if len(
        progress["methods"].get(m, {}).get("finetune", [])) >= args.seeds]
    if done:
        print(f"Continuing the run in {results.path}: {', '.join(done)} "
              "done.")
    keras.utils.set_random_seed(args.seed)
    inputs = Inputs(args)
    run_scratch(args, inputs, results)
    for method in args.methods:
        run_method(args, method, inputs, results, output_dir)

    previous_table = progress.get("table")
    progress["table"] = json.loads(json.dumps(
        table_rows(progress, args.seeds)))
    command = "python examples/compare_methods.py " + shlex.join(argv)
    progress.update({
        "preset": args.preset,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": info,
        "estimated_seconds": estimate,
        "command": command.strip(),
        "pretext_images": (args.pretext_images // args.batch_size
                           * args.batch_size),
        "test_images": args.test_images or TEST_SIZE,
    })
    results.save()
    chart = output_dir / "zoo.png"
    if progress["table"] != previous_table or not chart.exists():
        plot(progress["table"], progress["test_images"], chart)
    pages = [(output_dir / "zoo.md", output_dir)]
    if args.page:
        page = pathlib.Path(args.page)
        page.parent.mkdir(parents=True, exist_ok=True)
        pages.append((page, page.parent))
    for path, folder in pages:
        markdown = report(args, progress, info, results.wall_seconds(),
                          progress["command"], folder)
        write_page(path, markdown)
    results.save()
    print("\n" + markdown)
    print("Written: " + ", ".join(
        str(p.resolve()) for p in (results.path, chart,
                                   *(path for path, _ in pages))))
    return progress


# A page's text from this line on is a person's reading of the figures: it
# is kept when the run writes the page again.
FINDINGS_MARKER = "<!-- findings: written by hand, kept by compare_methods.py -->"


def write_page(path, markdown):
    """Writes the generated report to `path`, keeping the hand-written
    findings of the page already there (from `FINDINGS_MARKER` on)."""
    path = pathlib.Path(path)
    if path.exists():
        old = path.read_text()
        if FINDINGS_MARKER in old:
            markdown = (markdown.rstrip("\n") + "\n\n"
                        + old[old.index(FINDINGS_MARKER):])
    path.write_text(markdown)


if __name__ == "__main__":
    main()
