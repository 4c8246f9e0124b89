"""Is the input pipeline fast enough to feed Selfie pretraining?

Measures, in one run and one after the other (so they do not share the
CPU):

(a) the input pipeline's images/s: CIFAR-10 train split from
    `tfds.load("cifar10")`, `make_dataset` with the paper's pretraining
    augmentation (reflect-pad 4, random 32x32 crop, flip; uint8 out),
    shuffling and batching, iterated after a warm-up that fills the shuffle
    buffer;
(b) the `SelfiePretrainer` training step's images/s (`train_on_batch` on
    one in-memory batch after warm-up, so no input pipeline is involved),
    for each `--width`;

and prints both and the ratio pipeline / step, which should be >= 5.
Every figure is the median over `--windows` windows of `--batches` batches.

    TFDS_DATA_DIR=../shared/datasets/tensorflow_datasets \\
        python benchmarks/input_pipeline.py --widths 0.25 1.0
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

import keras_selfie  # noqa: E402
from keras_selfie.data.augment import pretraining_augmentation  # noqa: E402
from keras_selfie.data.pipeline import make_dataset  # noqa: E402
from timing import machine_line  # noqa: E402
from timing import median_rate  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=64,
                        help="images per batch, both measurements (default: "
                        "64, as examples/pretrain_cifar10.py)")
    parser.add_argument("--widths", type=float, nargs="+", default=[0.25],
                        help="ResNet-50 width multipliers of the steps to "
                        "time (default: 0.25)")
    parser.add_argument("--pipeline-batches", type=int, default=200,
                        help="batches per pipeline window (default: 200)")
    parser.add_argument("--step-batches", type=int, default=5,
                        help="training steps per step window (default: 5)")
    parser.add_argument("--windows", type=int, default=5,
                        help="timed windows; the median is reported")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed steps before timing the step")
    parser.add_argument("--cache", action="store_true",
                        help="cache the decoded split in memory")
    parser.add_argument("--jit-compile", action="store_true",
                        help="compile the training step with XLA")
    parser.add_argument("--data-dir", default=None,
                        help="TFDS data folder (default: $TFDS_DATA_DIR)")
    return parser.parse_args(argv)


def pipeline_rate(args):
    images = tfds.load(
        "cifar10", split="train", as_supervised=True, data_dir=args.data_dir
    ).map(lambda image, label: image)
    dataset = make_dataset(
        images,
        batch_size=args.batch_size,
        augment=pretraining_augmentation(),
        cache=args.cache,
        repeat=True,
        seed=0,
    )
    iterator = iter(dataset)
    # Warm-up: fills the 10,000-image shuffle buffer (and the cache).
    for _ in range(10_000 // args.batch_size + 20):
        next(iterator)

    def window():
        for _ in range(args.pipeline_batches):
            next(iterator)

    return median_rate(
        window, args.pipeline_batches * args.batch_size, args.windows
    )


def step_rate(args, width):
    keras.utils.set_random_seed(0)
    pretrainer = keras_selfie.SelfiePretrainer(
        image_size=32, patch_size=8, stem="cifar", width=width,
        num_heads=8, seed=0,
    )
    pretrainer.compile(
        optimizer=keras_selfie.optimizers.make_optimizer("sgd", 0.1),
        jit_compile=args.jit_compile,
    )
    batch = np.random.RandomState(0).randint(
        0, 256, size=(args.batch_size, 32, 32, 3), dtype="uint8"
    )
    for _ in range(args.warmup):
        pretrainer.train_on_batch(batch)

    def window():
        for _ in range(args.step_batches):
            pretrainer.train_on_batch(batch)

    rate, rates = median_rate(
        window, args.step_batches * args.batch_size, args.windows
    )
    return rate, rates, pretrainer.count_params()


def main(argv=None):
    args = parse_args(argv)
    print(machine_line())
    print(f"Batch size {args.batch_size}, median of {args.windows} windows, "
          f"jit_compile={args.jit_compile}, cache={args.cache}\n")

    pipe, pipe_rates = pipeline_rate(args)
    print(f"(a) input pipeline (CIFAR-10 train, pad-crop-flip, shuffle, "
          f"batch): {pipe:,.0f} images/s "
          f"(windows: {', '.join(f'{r:,.0f}' for r in pipe_rates)})")
    results = {"pipeline": pipe}
    for width in args.widths:
        step, step_rates, params = step_rate(args, width)
        ratio = pipe / step
        results[width] = (step, ratio)
        print(f"(b) training step, width {width} ({params:,} parameters): "
              f"{step:,.1f} images/s "
              f"(windows: {', '.join(f'{r:,.1f}' for r in step_rates)})")
        print(f"    ratio pipeline / step: {ratio:,.1f}x "
              f"({'meets' if ratio >= 5 else 'FAILS'} the >= 5x requirement)")
    return results


if __name__ == "__main__":
    main()
