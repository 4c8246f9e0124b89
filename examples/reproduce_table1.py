"""Reproduces the CIFAR-10 row of the paper's Table 1 in one command.

1. Pretrains a `SelfiePretrainer` on the unlabeled CIFAR-10 train split
   (pad-and-crop + flip augmentation, SGD with Nesterov momentum, warm-up
   and cosine decay, as `examples/pretrain_cifar10.py`), with a
   `KNNMonitor` reporting the kNN accuracy of `P` on held-out labeled
   images every `--knn-every` epochs; the pretext curve (loss,
   patch_accuracy, knn_accuracy per epoch) is recorded.
2. Measures linear-probe and kNN accuracy of the pretrained `P` against a
   randomly initialised `P` (a fresh `SelfiePretrainer` with the same
   config and seed, i.e. the pretrained model's own starting point).
3. For each label fraction and seed, takes the class-stratified subset
   `data.labeled_subset(train, fraction, seed)` -- the same images for both
   runs -- and fine-tunes a ResNet-50 with `evaluation.finetune` from
   scratch and from the pretrained `P`, with the same schedule, evaluated
   on the test split.
4. Prints and writes (`table1.md`, `results.json` in `--output-dir`) the
   table `fraction | scratch | pretrained | delta` next to the paper's row,
   with the wall time and the machine.

    python examples/reproduce_table1.py --preset cpu        # ~1 h, 2 cores
    python examples/reproduce_table1.py --preset paper_cifar10  # GPU/TPU
    python examples/reproduce_table1.py --smoke             # ~1 min

Every preset value can be overridden by its flag. Budgets are in steps
(`--*-steps-per-epoch`), so the running time is predictable.
"""

import argparse
import datetime
import json
import pathlib
import sys
import time

import keras
import numpy as np

import keras_selfie
from keras_selfie import data
from keras_selfie import evaluation
from keras_selfie import training

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import evaluation_protocol as protocol  # noqa: E402

# Table 1 of Trinh, Luong, Le, "Selfie: Self-supervised Pretraining for Image
# Embedding" (arXiv 1906.02940), CIFAR-10 rows, test accuracy (%) of
# ResNet-50: supervised only vs. Selfie-pretrained, mean +- std over runs.
# Copied from /work/shared/PAPER.md, "Results to compare against (paper)".
PAPER_TABLE1_CIFAR10 = {
    0.05: {"supervised": (75.9, 0.7), "selfie": (75.9, 0.4), "delta": 0.0},
    0.08: {"supervised": (79.3, 1.0), "selfie": (80.3, 0.3), "delta": 1.0},
    0.20: {"supervised": (88.3, 0.3), "selfie": (89.1, 0.5), "delta": 0.8},
    1.00: {"supervised": (95.5, 0.2), "selfie": (95.7, 0.1), "delta": 0.2},
}

# `None` for a steps-per-epoch value means "one pass over the data".
# The presets sized for this protocol: those with an `evaluation` section in
# `keras_selfie.presets` (the one home of every preset).
PRESETS = [
    name for name, preset in keras_selfie.presets.PRESETS.items()
    if "evaluation" in preset
]

# Measured on the 2-core CPU machine of this project (see the module notes).
CPU_SECONDS = {
    "pretrain_step_w025_b64": 1.1,
    "finetune_step_w025_b64": 0.9,
    "finetune_trace": 12.0,
    "eval_image": 0.0045,
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu",
                        help="one of keras_selfie.presets")
    parser.add_argument("--smoke", action="store_true",
                        help="shorthand for --preset tiny")
    add = parser.add_argument
    # Architecture.
    add("--width", type=float, help="width of ResNet-50 (1.0 = paper)")
    add("--num-layers", type=int, help="Transformer layers of attention "
        "pooling")
    add("--num-heads", type=int)
    add("--intermediate-dim", type=int)
    # Selfie's formulation (SelfiePretrainer arguments; unset: its defaults,
    # or those the query mode implies).
    add("--query", choices=keras_selfie.models.selfie_pretrainer.QUERIES,
        help="query of each masked position: 'context' (computed by "
        "attention pooling from the visible patches) or 'paper' (u + PE(j))")
    add("--distractors", choices=keras_selfie.losses.DISTRACTORS,
        help="candidates of each query: the masked patches of its image, or "
        "of every image of the batch")
    add("--similarity", choices=keras_selfie.losses.SIMILARITIES)
    add("--temperature", type=float, help="scores are divided by it")
    add("--context-view", choices=keras_selfie.models.selfie_pretrainer.VIEWS,
        help="what P sees for the visible patches: each patch alone, or the "
        "image with the masked patches blanked out")
    add("--target-view", choices=keras_selfie.models.selfie_pretrainer.VIEWS,
        help="the same for the masked (candidate) patches")
    add("--projection-head", dest="projection_head", action="store_true",
        default=None, help="an MLP between P and the candidates' scores "
        "(not transferred)")
    add("--patch-color-jitter", dest="patch_color_jitter",
        action="store_true", default=None,
        help="a random colour distortion for every patch in pretraining "
        "(a guard against colour shortcuts)")
    # Pretraining.
    add("--pretrain-epochs", type=int)
    add("--pretrain-steps-per-epoch", type=int,
        help="default: one pass over the 50,000 train images")
    add("--pretrain-batch-size", type=int)
    add("--pretrain-learning-rate", type=float)
    add("--pretrain-weight-decay", type=float)
    add("--pretrain-warmup-epochs", type=int)
    add("--knn-every", type=int, help="kNN evaluation every N epochs")
    add("--knn-train-images", type=int,
        help="labeled train images forming the kNN memory bank")
    add("--knn-test-images", type=int,
        help="held-out labeled test images classified by kNN")
    # Frozen-feature evaluation.
    add("--probe-train-images", type=int,
        help="labeled train images of the linear probe and kNN memory bank")
    add("--probe-epochs", type=int)
    # Fine-tuning.
    add("--fractions", type=float, nargs="*",
        help="label fractions, e.g. 0.05 0.08 0.2 (none: no fine-tuning)")
    add("--full", action="store_true",
        help="also fine-tune on 100%% of the labels (fraction 1.0)")
    add("--seeds", type=int, help="seeds (runs) per fraction: 0 .. N-1")
    add("--finetune-epochs", type=int, nargs="+",
        help="passes (epochs) per fraction: one value for all fractions, "
        "or one per fraction")
    protocol.add_finetuning_arguments(parser)
    # Misc.
    add("--seed", type=int, default=0,
        help="seed of pretraining and of the random-P baseline")
    add("--data-dir", default=None,
        help="TFDS data folder (default: $TFDS_DATA_DIR or TFDS's own)")
    add("--pretrained-weights", default=None, metavar="FILE",
        help="skip pretraining: load the pretrainer's weights from a "
        "previous run's selfie_pretrainer.weights.h5 (same preset and "
        "architecture); its results.json beside it supplies the pretext "
        "curve")
    add("--output-dir", default="runs/reproduce_table1")
    add("--verbose", type=int, default=2, help="verbosity of fit")
    args = parser.parse_args(argv)
    if args.smoke:
        args.preset = "tiny"
    keras_selfie.presets.fill_arguments(
        args, args.preset, pretraining_prefix="pretrain_"
    )
    if args.pretrain_learning_rate is None:
        args.pretrain_learning_rate = (
            keras_selfie.optimizers.DEFAULT_LEARNING_RATES["sgd"]
        )
    fractions = [float(f) for f in args.fractions]
    if args.full and 1.0 not in fractions:
        fractions.append(1.0)
    args.fractions = fractions
    epochs = list(args.finetune_epochs)
    if len(epochs) == 1:
        epochs = epochs * len(fractions)
    if fractions and len(epochs) != len(fractions):
        parser.error(
            f"--finetune-epochs takes one value or one per fraction "
            f"({len(fractions)}); received {len(epochs)}"
        )
    args.finetune_epochs = epochs[: len(fractions)]
    return args


def estimate_seconds(args, train_size=50_000):
    """CPU time estimate from `CPU_SECONDS` (width 0.25, batch 64 scale)."""
    scale = (args.width / 0.25) ** 2
    pre_steps = args.pretrain_epochs * (
        args.pretrain_steps_per_epoch
        or train_size // args.pretrain_batch_size
    )
    pretrain = (pre_steps * CPU_SECONDS["pretrain_step_w025_b64"] * scale
                * args.pretrain_batch_size / 64)
    finetune = 0.0
    for fraction, epochs in zip(args.fractions, args.finetune_epochs):
        steps = epochs * (
            args.finetune_steps_per_epoch
            or max(int(fraction * train_size) // args.finetune_batch_size, 1)
        )
        per_run = (
            steps * CPU_SECONDS["finetune_step_w025_b64"] * scale
            * args.finetune_batch_size / 64
            + CPU_SECONDS["finetune_trace"]
            + (args.test_images or 10_000) * CPU_SECONDS["eval_image"]
        )
        finetune += 2 * args.seeds * per_run
    return {"pretrain": round(pretrain), "finetune": round(finetune),
            "total": round(pretrain + finetune)}


def model_config(args):
    """The `SelfiePretrainer` arguments the flags set (unset: the
    preset's, or the defaults the query mode implies)."""
    return {
        key: getattr(args, key)
        for key in ("width", "num_layers", "num_heads", "intermediate_dim",
                    "query", "distractors", "similarity", "temperature",
                    "context_view", "target_view", "projection_head",
                    "patch_color_jitter")
    }


def build_pretrainer(args):
    return training.build_pretrainer(
        args.preset, seed=args.seed, **model_config(args)
    )


def pretrain(args, pretrainer, knn_train, knn_test, run_dir):
    """Pretrains, backing up every epoch to `run_dir`: a killed run resumes
    at its last completed epoch, with the batches it would have had. The
    trained weights are copied into `pretrainer` (a fresh model of the same
    configuration), which is returned."""
    run = training.run_pretraining(
        data.load_tfds("cifar10", "train", data_dir=args.data_dir),
        run_dir,
        preset=args.preset,
        config=model_config(args),
        # The preset's optimizer (SGD); steps per epoch None: one pass
        # over the 50,000 train images.
        **keras_selfie.presets.pretraining_arguments(args, "pretrain_"),
        seed=args.seed,
        monitors=[evaluation.KNNMonitor(
            knn_train, knn_test, every_n_epochs=args.knn_every
        )],
        log_keys=("knn_accuracy",),
        checkpoint=False,
        run_eagerly=args.run_eagerly,
        verbose=args.verbose,
        data_name="CIFAR-10",
    )
    history = run.history
    curve = [
        {
            "epoch": epoch + 1,
            "loss": float(history["loss"][epoch]),
            "patch_accuracy": float(history["patch_accuracy"][epoch]),
            "knn_accuracy": _number(history.get("knn_accuracy"), epoch),
        }
        for epoch in range(run.epochs)
    ]
    done = run.resumed_at_epoch
    # The weights without the optimizer's state (`save_weights` of a
    # compiled model keeps it, doubling the file).
    pretrainer.set_weights(run.pretrainer.get_weights())
    return pretrainer, {
        "steps": run.steps,
        "steps_per_epoch": run.steps_per_epoch,
        "resumed_at_epoch": done,
        "seconds": round(run.seconds, 1),
        "seconds_per_step": round(
            run.seconds / max((run.epochs - done) * run.steps_per_epoch, 1),
            3,
        ),
        # Of the training batches the curve's patch accuracy is over.
        "chance_patch_accuracy": run.pretrainer.chance_patch_accuracy(
            run.batch_size
        ),
        "curve": curve,
    }


def _number(values, index):
    """`values[index]` as a float, `None` if absent or empty."""
    if not values or index >= len(values) or values[index] in (None, ""):
        return None
    value = float(values[index])
    return None if np.isnan(value) else value


def frozen_evaluation(args, models, probe_train, test, context_images):
    """Frozen-feature figures of each P, at both batch-norm settings.

    For each model: kNN, linear probe and feature health at each batch-norm
    setting (`evaluation.batch_norm_settings`: the statistics P was trained
    with, on 8x8 patches, and those of whole 32x32 images), the better
    setting per metric, so that a gain is never an artefact of crippling
    the baseline, and the context
    gain of the pretext predictions (the model's own candidates, and the
    image's M patches).
    """
    results = {}
    for name, model in models.items():
        entry = protocol.frozen_figures(model, probe_train, test,
                                        args.probe_epochs, args.seed)
        entry["feature_health"] = {
            key: entry["settings"]["moving"][key]
            for key in ("effective_rank", "relative_std",
                        "top_direction_share")
        }
        entry["context_gain"] = {
            distractors: evaluation.context_gain(
                model, context_images, distractors=distractors, seed=args.seed
            )
            for distractors in dict.fromkeys((model.distractors, "image"))
        }
        results[name] = entry
    return results


def patch_views(args, models, probe_train, test):
    """kNN and linear probe of P run on each patch alone, as in
    pretraining (moving batch-norm statistics: those of patches), pooled by
    mean or concatenation (`evaluation.patch_feature_network`)."""
    results = {}
    for name, model in models.items():
        view = evaluation.patch_feature_network(model, "concat")
        # The N patch features of each image, once; both poolings of them.
        concat = {split: evaluation.extract_features(view, images)
                  for split, images in (("train", probe_train),
                                        ("test", test))}
        pooled = {"concat": concat, "mean": {
            split: (features.reshape(len(features), model.num_patches, -1)
                    .mean(axis=1), labels)
            for split, (features, labels) in concat.items()
        }}
        results[name] = {
            f"patch_{pooling}": protocol.feature_figures(
                pooled[pooling]["train"], pooled[pooling]["test"],
                args.probe_epochs, args.seed,
            )
            for pooling in evaluation.features.POOLINGS
        }
    return results


def make_table(rows):
    lines = [
        "| labels | scratch (%) | pretrained (%) | delta | "
        "paper supervised | paper Selfie | paper delta |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        paper = PAPER_TABLE1_CIFAR10.get(row["fraction"])
        if paper:
            paper_cells = (
                "{:.1f} +- {:.1f}".format(*paper["supervised"]),
                "{:.1f} +- {:.1f}".format(*paper["selfie"]),
                f"{paper['delta']:+.1f}",
            )
        else:
            paper_cells = ("-", "-", "-")
        lines.append(
            f"| {row['fraction'] * 100:g}% "
            f"| {row['scratch_mean']:.1f} +- {row['scratch_std']:.1f} "
            f"| {row['pretrained_mean']:.1f} +- {row['pretrained_std']:.1f} "
            f"| {row['delta']:+.1f} | " + " | ".join(paper_cells) + " |"
        )
    return "\n".join(lines)


# Arguments that do not change what a run computes: a run started again
# with other values of these continues the results file.
NOT_IDENTITY = ("smoke", "verbose", "output_dir", "data_dir")


def main(argv=None):
    args = parse_args(argv)
    wall_start = time.time()
    output_dir = pathlib.Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    info = protocol.machine()
    estimate = estimate_seconds(args)
    print(f"Preset {args.preset!r}; estimated time on 2 CPU cores: "
          f"{estimate['total'] / 60:.0f} min (pretraining "
          f"{estimate['pretrain'] / 60:.0f}, fine-tuning "
          f"{estimate['finetune'] / 60:.0f}). Machine: {info['platform']}, "
          f"{info['usable_cpus']} usable CPUs, accelerators: "
          f"{info['accelerators'] or 'none'}.")
    config = {k: v for k, v in vars(args).items() if k != "smoke"}
    results = protocol.ResultsFile(output_dir / "results.json", config,
                                   NOT_IDENTITY, start=wall_start)
    results_path = results.path
    progress = results.progress
    progress.setdefault("runs", [])
    checkpoint = results.save
    if progress.get("pretraining"):
        print(f"Continuing the run in {results_path}: "
              f"{len(progress['runs'])} fine-tuning run(s) done.")

    def labeled(split):
        return data.load_tfds("cifar10", split, labeled=True,
                              data_dir=args.data_dir)

    test_split = f"test[:{args.test_images}]" if args.test_images else "test"
    test = data.make_dataset(labeled(test_split), 256, training=False)
    knn_train = labeled(f"train[:{args.knn_train_images}]")
    knn_test = labeled(f"test[:{args.knn_test_images}]")
    probe_train = labeled(f"train[:{args.probe_train_images}]")

    # 1. Pretraining.
    pretrainer = build_pretrainer(args)
    weights_path = output_dir / "selfie_pretrainer.weights.h5"
    print(f"  formulation: {pretrainer.formulation}")
    if progress.get("pretraining"):
        print(f"\n== 1. Selfie pretraining: done, weights from "
              f"{weights_path}")
        pretrainer.load_weights(weights_path)
    elif args.pretrained_weights:
        print("\n== 1. Selfie pretraining: weights from "
              f"{args.pretrained_weights}")
        pretrainer.load_weights(args.pretrained_weights)
        previous = pathlib.Path(args.pretrained_weights).with_name(
            "results.json"
        )
        pretraining = (
            json.loads(previous.read_text())["pretraining"]
            if previous.exists() else {"curve": []}
        )
        pretraining["weights_from"] = str(args.pretrained_weights)
        progress["pretraining"] = pretraining
    else:
        print("\n== 1. Selfie pretraining on the unlabeled CIFAR-10 train "
              "split")
        pretrainer, progress["pretraining"] = pretrain(
            args, pretrainer, knn_train, knn_test, output_dir / "pretraining"
        )
    pretraining = progress["pretraining"]
    pretraining["formulation"] = pretrainer.formulation
    for point in pretraining["curve"]:
        knn = point["knn_accuracy"]
        print(f"  epoch {point['epoch']:3d}  loss {point['loss']:.4f}  "
              f"patch_accuracy {point['patch_accuracy']:.3f}  knn_accuracy "
              + ("-" if knn is None else f"{knn:.3f}"))
    if not weights_path.exists():
        pretrainer.save_weights(weights_path)
    checkpoint()

    # 2. Frozen features: pretrained vs. random P (same config and seed: the
    # pretrained model's own initial weights), built only if a stage is left.
    print("\n== 2. Frozen features of P (kNN, linear probe, feature health, "
          f"context gain) on {test_split}")
    if not {"frozen_features", "patch_views"} <= progress.keys():
        models = {"pretrained": pretrainer, "random": build_pretrainer(args)}
    if "frozen_features" not in progress:
        progress["frozen_features"] = frozen_evaluation(
            args,
            models,
            probe_train,
            test,
            data.load_tfds("cifar10", test_split, data_dir=args.data_dir),
        )
        checkpoint()
    if "patch_views" not in progress:
        progress["patch_views"] = patch_views(args, models, probe_train,
                                              test)
        checkpoint()
    frozen = progress["frozen_features"]
    for name, values in progress["patch_views"].items():
        print(f"  {name:10} P on patches: " + "  ".join(
            f"{view} kNN {v['knn_accuracy']:.3f} probe "
            f"{v['linear_probe_accuracy']:.3f}"
            for view, v in values.items()))
    for name, values in frozen.items():
        gain = values["context_gain"][pretrainer.distractors]
        print(f"  {name:10} P: kNN {values['knn_accuracy']:.3f} "
              f"({values['knn_setting']} BN)  linear probe "
              f"{values['linear_probe_accuracy']:.3f} "
              f"({values['linear_probe_setting']} BN)  effective rank "
              f"{values['feature_health']['effective_rank']:.1f}  "
              f"context gain {gain['context_gain']:+.3f}")

    # 3. Fine-tuning on stratified label subsets, scratch vs. pretrained.
    print("\n== 3. Fine-tuning a ResNet-50 on stratified label subsets")
    if args.fractions:
        train_images, train_labels = protocol.train_arrays(args.data_dir)
    done = {(r["fraction"], r["seed"], r["init"]): r for r in progress["runs"]}
    rows = []
    for fraction, epochs in zip(args.fractions, args.finetune_epochs):
        accuracies = {"scratch": [], "pretrained": []}
        for seed in range(args.seeds):
            # The same images for both runs: the subset depends only on
            # the labels, the fraction and the seed.
            subset, _ = data.labeled_subset(
                (train_images, train_labels), fraction, seed=seed
            )
            for kind in ("scratch", "pretrained"):
                run = done.get((fraction, seed, kind))
                if run is None:
                    run = protocol.finetune_run(
                        args, pretrainer, subset, test, seed, epochs,
                        from_scratch=kind == "scratch",
                    )
                    run.update(fraction=fraction, seed=seed, init=kind)
                    progress["runs"].append(run)
                    checkpoint()
                accuracies[kind].append(run["accuracy"])
                print(f"  {fraction * 100:5g}% seed {seed} {kind:10} "
                      f"{run['num_labeled_images']:6d} images "
                      f"{run['steps']:5d} steps  accuracy "
                      f"{run['accuracy']:.4f}  ({run['seconds']:.0f} s)")
        scratch_mean, scratch_std = protocol.mean_std(accuracies["scratch"])
        pre_mean, pre_std = protocol.mean_std(accuracies["pretrained"])
        rows.append({
            "fraction": fraction,
            "num_labeled_images": run["num_labeled_images"],
            "steps": run["steps"],
            "scratch_accuracies": accuracies["scratch"],
            "pretrained_accuracies": accuracies["pretrained"],
            "scratch_mean": scratch_mean,
            "scratch_std": scratch_std,
            "pretrained_mean": pre_mean,
            "pretrained_std": pre_std,
            "delta": pre_mean - scratch_mean,
            "paper": PAPER_TABLE1_CIFAR10.get(fraction),
        })

    # 4. Report.
    seconds = results.wall_seconds()
    table = make_table(rows)
    header = (
        f"# Table 1, CIFAR-10: ResNet-50 from scratch vs. from Selfie "
        f"(preset `{args.preset}`)\n\n"
        f"Test accuracy (%) on `{test_split}`, mean +- std over "
        f"{args.seeds} seed(s); the paper's numbers are Table 1 of "
        "arXiv 1906.02940 (full width, long schedules).\n"
    )
    if pretraining["curve"]:
        pretext = (
            f"\nPretext task after {pretraining['steps']} steps: loss "
            f"{pretraining['curve'][-1]['loss']:.3f}, patch accuracy "
            f"{pretraining['curve'][-1]['patch_accuracy']:.3f} (chance "
            f"{pretraining['chance_patch_accuracy']:.4f}).\n"
        )
    else:
        pretext = (
            f"\nPretrained weights from {pretraining['weights_from']} (no "
            "results.json beside them: see that run for the pretext "
            "curve).\n"
        )
    footer = (
        pretext
        + f"Frozen P on `{test_split}` (kNN / linear probe, each at its "
        f"better batch-norm setting): pretrained "
        f"{frozen['pretrained']['knn_accuracy'] * 100:.1f} / "
        f"{frozen['pretrained']['linear_probe_accuracy'] * 100:.1f}, random "
        f"{frozen['random']['knn_accuracy'] * 100:.1f} / "
        f"{frozen['random']['linear_probe_accuracy'] * 100:.1f}.\n\n"
        f"Wall time: {seconds / 60:.1f} min on "
        f"{protocol.machine_line(info)}.\n\n"
        f"Configuration: `{json.dumps(config)}`\n"
    )
    markdown = header + "\n" + table + "\n" + footer
    progress.update({
        "preset": args.preset,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": info,
        "estimated_seconds": estimate,
        "test_split": test_split,
        "table": rows,
        "paper": {str(k): v for k, v in PAPER_TABLE1_CIFAR10.items()},
    })
    (output_dir / "table1.md").write_text(markdown)
    checkpoint()
    print("\n" + markdown)
    print(f"Written: {(output_dir / 'table1.md').resolve()}, "
          f"{results_path.resolve()}")
    return progress


if __name__ == "__main__":
    main()
