"""Pretrains Selfie on CIFAR-10 and transfers the result into a ResNet-50.

The main job of the README: a short pretraining on the unlabeled CIFAR-10
train split (read with `tfds.load("cifar10")`), a report of the pretext
loss and patch accuracy on the test split before and after, of what
pretraining bought (the context gain, and the kNN accuracy of pretrained P
against random P on held-out test images), and the pretrained weights
written to disk, both as the `.keras` pretrainer and as a ResNet-50 ready
to fine-tune.

    python examples/pretrain_cifar10.py --steps 600 --width 0.25

Defaults are sized for a laptop CPU (a few minutes); `--width 1.0` and more
steps give the paper's network. A killed run resumes where its last
backup (every epoch, in OUTPUT_DIR/backup) left off when the same command
is run again; `keras-selfie pretrain` is the general command line.
"""

import argparse
import json
import os
import pathlib

import keras_selfie
from keras_selfie import training


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="cifar10_short",
                        choices=sorted(
                            name for name, preset
                            in keras_selfie.presets.PRESETS.items()
                            # CIFAR-10's size
                            if preset["config"]["image_size"] == 32
                        ),
                        help="network and run of every unset option below "
                        "(default: cifar10_short, 10 epochs of 60 steps of "
                        "64 images at width 0.25)")
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps, in 10 epochs (default: the "
                        "preset's, 600)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--width", type=float, default=None,
                        help="width multiplier of ResNet-50 stages 1-3 "
                        "(1.0 = the paper's P; default: 0.25)")
    parser.add_argument("--num-layers", type=int, default=None,
                        help="Transformer layers in attention pooling")
    parser.add_argument("--num-heads", type=int, default=None)
    parser.add_argument("--intermediate-dim", type=int, default=None)
    parser.add_argument("--optimizer", default=None,
                        choices=keras_selfie.optimizers.OPTIMIZERS,
                        help="SGD with Nesterov momentum 0.9 (as the PyTorch "
                        "reimplementation) or AdamW (default: sgd)")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="peak learning rate (default: 0.1 for sgd, "
                        "1e-3 for adamw)")
    parser.add_argument("--weight-decay", type=float, default=None)
    parser.add_argument("--eval-images", type=int, default=2048,
                        help="test images used to measure patch accuracy, "
                        "context gain and kNN accuracy")
    parser.add_argument("--knn-train-images", type=int, default=5000,
                        help="labeled train images forming the kNN memory "
                        "bank")
    parser.add_argument("--precision", default="float32",
                        choices=keras_selfie.models.selfie_pretrainer
                        .PRECISIONS,
                        help="dtype policy of the pretrainer: 16-bit P and "
                        "A, float32 weights, scores and loss")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None,
                        help="TFDS data folder (default: $TFDS_DATA_DIR, or "
                        "TFDS's own default, where CIFAR-10 is downloaded)")
    parser.add_argument("--output-dir", default="runs/pretrain_cifar10")
    # Filled from the preset: the run is always 10 epochs; --steps sets their
    # length.
    parser.set_defaults(epochs=None, steps_per_epoch=None,
                        warmup_epochs=None)
    args = parser.parse_args(argv)
    keras_selfie.presets.fill_arguments(args, args.preset)
    if args.steps is None:
        args.steps = args.epochs * args.steps_per_epoch
    args.steps_per_epoch = max(args.steps // args.epochs, 1)
    return args


TEST_BATCH_SIZE = 256


def cifar10_test_images(split, data_dir=None):
    images = keras_selfie.data.load_tfds("cifar10", split, data_dir=data_dir)
    return keras_selfie.data.make_dataset(images, TEST_BATCH_SIZE,
                                          training=False)


def model_config(args):
    """The `SelfiePretrainer` arguments the flags override (None: the
    preset's)."""
    return dict(
        width=args.width,
        num_layers=args.num_layers,
        num_heads=args.num_heads,
        intermediate_dim=args.intermediate_dim,
        dtype=args.precision,
    )


def build_pretrainer(args):
    """A fresh pretrainer of the run's configuration and seed: the trained
    one's starting point."""
    return training.build_pretrainer(
        args.preset, seed=args.seed, **model_config(args)
    )


def what_pretraining_bought(args, pretrainer):
    """Context gain of the pretext predictions, and kNN accuracy of the
    pretrained P against random P (the same seed: its own starting point),
    each P at its better batch-norm setting, on held-out test images."""
    evaluation = keras_selfie.evaluation
    random_pretrainer = build_pretrainer(args)
    split = f"test[:{args.eval_images}]"
    test = keras_selfie.data.load_tfds("cifar10", split, labeled=True,
                                       data_dir=args.data_dir)
    bank = keras_selfie.data.load_tfds(
        "cifar10", f"train[:{args.knn_train_images}]", labeled=True,
        data_dir=args.data_dir,
    )
    report = {"context_gain": {}, "knn_accuracy": {}}
    for name, model in (("pretrained", pretrainer),
                        ("random", random_pretrainer)):
        report["context_gain"][name] = evaluation.context_gain(
            model, test.map(lambda x, y: x), seed=args.seed
        )
        report["knn_accuracy"][name] = {
            setting: float(evaluation.knn_accuracy(
                *evaluation.extract_features(network, bank),
                *evaluation.extract_features(network, test),
            ))
            for setting, network in evaluation.batch_norm_settings(
                model, bank
            ).items()
        }
    return report


def main(argv=None):
    args = parse_args(argv)
    output_dir = pathlib.Path(args.output_dir)
    test = cifar10_test_images(f"test[:{args.eval_images}]", args.data_dir)
    # Before training: a fresh model of the same seed starts from the same
    # weights and draws the same masked positions.
    fresh = build_pretrainer(args)
    fresh.compile()  # for `evaluate`: the pretext loss and patch accuracy
    before = fresh.evaluate(test, verbose=0, return_dict=True)
    # The paper's augmentation (pad 4 pixels, random crop back, flip) and a
    # resumable run: a killed run continues from its last epoch.
    run = training.run_pretraining(
        keras_selfie.data.load_tfds("cifar10", "train",
                                    data_dir=args.data_dir),
        output_dir,
        preset=args.preset,
        config=model_config(args),
        **keras_selfie.presets.pretraining_arguments(args),
        seed=args.seed,
        validation_data=test,
        checkpoint=False,
        verbose=2,
        data_name="CIFAR-10",
    )
    pretrainer, seconds = run.pretrainer, run.seconds
    after = pretrainer.evaluate(test, verbose=0, return_dict=True)
    bought = what_pretraining_bought(args, pretrainer)

    pretrainer_path = run.files["the pretrained model"]
    resnet = keras_selfie.transfer_to_resnet50(
        pretrainer, classes=10, classifier_activation=None
    )
    resnet_path = output_dir / "resnet50_from_selfie.keras"
    resnet.save(resnet_path)
    results = {
        "steps": run.steps,
        "batch_size": run.batch_size,
        "width": pretrainer.width,
        "precision": args.precision,
        "train_seconds": round(seconds, 1),
        "formulation": pretrainer.formulation,
        "chance_patch_accuracy": pretrainer.chance_patch_accuracy(
            TEST_BATCH_SIZE
        ),
        "test_before": before,
        "test_after": after,
        **bought,
        # Every epoch, those of runs before a resume included.
        "history": run.history,
        "pretrainer": str(pretrainer_path),
        "resnet50": str(resnet_path),
    }
    (output_dir / "results.json").write_text(json.dumps(results, indent=2))

    print("\nSelfie pretraining on CIFAR-10: done in "
          f"{seconds / 60:.1f} min ({results['steps']} steps).")
    print(f"{'':24}{'loss':>10}{'patch accuracy':>18}")
    print(f"{'test, before training':24}{before['loss']:>10.3f}"
          f"{before['patch_accuracy']:>18.3f}")
    print(f"{'test, after training':24}{after['loss']:>10.3f}"
          f"{after['patch_accuracy']:>18.3f}")
    print(f"{'chance':24}{'':>10}{results['chance_patch_accuracy']:>18.4f}")
    gain = bought["context_gain"]
    knn = bought["knn_accuracy"]
    print(f"\nWhat pretraining bought ({args.eval_images} held-out test "
          "images):")
    print(f"{'':24}{'pretrained P':>14}{'random P':>12}{'difference':>12}")
    print(f"{'context gain (points)':24}"
          f"{gain['pretrained']['context_gain'] * 100:>14.1f}"
          f"{gain['random']['context_gain'] * 100:>12.1f}"
          f"{(gain['pretrained']['context_gain'] - gain['random']['context_gain']) * 100:>+12.1f}")
    best = {name: max(values.items(), key=lambda item: item[1])
            for name, values in knn.items()}
    print(f"{'kNN accuracy (%)':24}{best['pretrained'][1] * 100:>14.1f}"
          f"{best['random'][1] * 100:>12.1f}"
          f"{(best['pretrained'][1] - best['random'][1]) * 100:>+12.1f}")
    print(f"  (context gain: patch accuracy with the image's own visible "
          f"patches minus with another image's; kNN: k = 20 over "
          f"{args.knn_train_images} labeled train images, batch-norm "
          f"statistics {best['pretrained'][0]} for pretrained P, "
          f"{best['random'][0]} for random P, the better of moving / "
          "recalibrated on whole images for each)")
    print(f"\nPretrainer:        {os.path.abspath(pretrainer_path)}")
    print(f"ResNet-50 (conv1-conv4 from P, 10 classes, logits): "
          f"{os.path.abspath(resnet_path)}")
    print(f"Figures:           {os.path.abspath(output_dir / 'results.json')}")
    return results


if __name__ == "__main__":
    main()
