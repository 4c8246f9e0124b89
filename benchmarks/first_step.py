"""What does the first training step cost, and what does building the
optimizer's variables at compile save?

Without a distribution strategy, Keras (TensorFlow backend) creates the
optimizer's variables (momentum, the step counter) while it traces the
first training step, and `tf.function` then traces that step a second
time, as it does whenever a first trace makes variables. `Pretrainer.compile`
builds them beforehand (`optimizers.build_optimizer_variables`), as Keras
does itself under a strategy.

For each method, in one process and alternating, this builds the `tiny`
preset's pretrainer, compiles it with the pretraining optimizer
(`optimizers.make_optimizer`: SGD with Nesterov momentum, weight decay and
the warm-up + cosine schedule, as `training.run_pretraining` does), and
times `fit` over 2 steps with

(a) the variables built at compile (`Pretrainer.compile`, the library), and
(b) the variables left to the first traced step (Keras' default: the
    same compile with `build_optimizer_variables` made a no-op),

in process CPU time (steadier than wall time on a shared machine) and
prints each, and the ratio a / b per round and its median.

    python benchmarks/first_step.py --methods selfie rotation --rounds 3
"""

import argparse
import statistics
import time

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", default=["selfie"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    return parser.parse_args(argv)


def first_fit_seconds(method, batch_size, prebuild):
    """CPU seconds of building, compiling and a 2-step `fit`."""
    import keras

    from keras_selfie import optimizers
    from keras_selfie import training
    from keras_selfie.models import pretrainer as pretrainer_module

    images = np.random.default_rng(0).integers(
        0, 256, (2 * batch_size, 32, 32, 3), dtype="uint8"
    )
    original = pretrainer_module.build_optimizer_variables
    if not prebuild:
        pretrainer_module.build_optimizer_variables = lambda model: None
    try:
        start = time.process_time()
        model = training.build_pretrainer("tiny", method, seed=0)
        model.compile(optimizer=optimizers.make_optimizer(
            "sgd", 0.01, 5e-4, total_steps=2
        ))
        model.fit(images, batch_size=batch_size, epochs=1, verbose=0)
        seconds = time.process_time() - start
    finally:
        pretrainer_module.build_optimizer_variables = original
    keras.backend.clear_session()
    return seconds


def main(argv=None):
    args = parse_args(argv)
    print(f"{'method':24} {'built at compile':>17} {'Keras default':>14} "
          f"{'ratio (median)':>15}")
    for method in args.methods:
        built, deferred, ratios = [], [], []
        for _ in range(args.rounds):
            built.append(first_fit_seconds(method, args.batch_size, True))
            deferred.append(first_fit_seconds(method, args.batch_size, False))
            ratios.append(built[-1] / deferred[-1])
        print(f"{method:24} {statistics.median(built):16.2f}s "
              f"{statistics.median(deferred):13.2f}s "
              f"{statistics.median(ratios):15.2f}", flush=True)


if __name__ == "__main__":
    main()
