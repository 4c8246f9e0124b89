"""Searches Selfie's hyperparameters on CIFAR-10 with KerasTuner.

Each trial builds a `SelfiePretrainer` from `SelfieHyperModel`'s search
space (decoder patches, attention pooling, dropout, learning rate, weight
decay, encoder position embedding), pretrains it on the unlabeled CIFAR-10
train split and scores it by its patch accuracy on images of the test
split. The best hyperparameters are printed and the best pretrainer is
saved as `.keras`.

    python examples/tune.py --tuner random --max-trials 3 --steps 40 --width 0.125

A real search wants more trials and steps (and `--width 1.0`).
"""

import argparse
import os
import pathlib
import time

import keras
import keras_tuner

import keras_selfie
from keras_selfie.tuning import SelfieHyperModel
from keras_selfie.tuning import selfie_objective

TUNERS = ("random", "bayesian", "hyperband")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tuner", choices=TUNERS, default="random",
                        help="search algorithm (default: random)")
    parser.add_argument("--max-trials", type=int, default=3,
                        help="trials for random and bayesian; hyperband "
                        "sets its own number from --epochs (default: 3)")
    parser.add_argument("--steps", type=int, default=40,
                        help="training steps per trial (default: 40)")
    parser.add_argument("--epochs", type=int, default=2,
                        help="epochs per trial, --steps split among them; "
                        "hyperband's max_epochs (default: 2)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=float, default=0.125,
                        help="width multiplier of ResNet-50 stages 1-3 "
                        "(1.0 = the paper's P; default: 0.125)")
    parser.add_argument("--optimizer", choices=keras_selfie.optimizers.OPTIMIZERS,
                        default="sgd")
    parser.add_argument("--objective", default="val_patch_accuracy",
                        help="val_patch_accuracy or val_loss")
    parser.add_argument("--val-images", type=int, default=1024,
                        help="test images that score a trial")
    parser.add_argument("--jit-compile", action="store_true",
                        help="compile each trial's step with XLA")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None,
                        help="TFDS data folder (default: $TFDS_DATA_DIR)")
    parser.add_argument("--output-dir", default="runs/tune")
    return parser.parse_args(argv)


def make_tuner(args, hypermodel):
    common = dict(
        objective=selfie_objective(args.objective),
        seed=args.seed,
        directory=args.output_dir,
        project_name=f"selfie_{args.tuner}",
        overwrite=True,
    )
    if args.tuner == "random":
        return keras_tuner.RandomSearch(
            hypermodel, max_trials=args.max_trials, **common
        )
    if args.tuner == "bayesian":
        return keras_tuner.BayesianOptimization(
            hypermodel, max_trials=args.max_trials, **common
        )
    return keras_tuner.Hyperband(
        hypermodel, max_epochs=args.epochs, factor=3, **common
    )


def main(argv=None):
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    output_dir = pathlib.Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    data = keras_selfie.data
    train = data.make_dataset(
        data.load_tfds("cifar10", "train", data_dir=args.data_dir),
        args.batch_size,
        augment=data.pretraining_augmentation(),
        repeat=True,
        seed=args.seed,
    )
    val = data.make_dataset(
        data.load_tfds(
            "cifar10", f"test[:{args.val_images}]", data_dir=args.data_dir
        ),
        256,
        training=False,
    )

    hypermodel = SelfieHyperModel(
        image_size=32,
        patch_size=8,
        stem="cifar",
        width=args.width,
        seed=args.seed,
        optimizer=args.optimizer,
        # Patch accuracy and loss depend on the number of candidates M
        # (chance is 1/M), so M is fixed for trials to compare fairly.
        search_space={"num_decoder_patches": 4},
        compile_kwargs={"jit_compile": args.jit_compile},
    )
    tuner = make_tuner(args, hypermodel)
    tuner.search_space_summary()
    start = time.time()
    tuner.search(
        train,
        validation_data=val,
        epochs=args.epochs,
        steps_per_epoch=max(args.steps // args.epochs, 1),
        verbose=2,
    )
    minutes = (time.time() - start) / 60

    best_trial = tuner.oracle.get_best_trials(1)[0]
    best_hp = best_trial.hyperparameters
    print(f"\n{len(tuner.oracle.trials)} trials in {minutes:.1f} min; best "
          f"{args.objective}: {best_trial.score:.4f} "
          f"(trial {best_trial.trial_id})")
    for name, value in best_hp.values.items():
        if isinstance(value, float):
            value = f"{value:.4g}"
        print(f"  {name:28}{value}")
    best = tuner.get_best_models(1)[0]
    path = output_dir / "best_selfie_pretrainer.keras"
    best.save(path)
    print(f"Best pretrainer: {os.path.abspath(path)}")
    return best_hp


if __name__ == "__main__":
    main()
