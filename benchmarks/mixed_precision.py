"""Does mixed precision train Selfie as well as float32, and how fast?

Runs the short CIFAR-10 pretraining of `examples/pretrain_cifar10.py`
(same seed, data order and schedule) once per `--precisions` policy and
prints, for each, the training images/s, the last training loss, whether
any loss was NaN, and the pretext loss and patch accuracy on the test
split. Mixed precision should reach the patch accuracy of float32 (within
the noise of a short run) without NaN.

    TFDS_DATA_DIR=../shared/datasets/tensorflow_datasets \\
        python benchmarks/mixed_precision.py --steps 300 --width 0.25

Arguments other than `--precisions` and `--output-dir` are passed on to the
example (e.g. `--steps`, `--width`, `--batch-size`, `--eval-images`).
"""

import argparse
import importlib.util
import math
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_selfie.models.selfie_pretrainer import PRECISIONS  # noqa: E402

EXAMPLE = (
    pathlib.Path(__file__).resolve().parents[1]
    / "examples"
    / "pretrain_cifar10.py"
)


def load_example():
    spec = importlib.util.spec_from_file_location("pretrain_cifar10", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS),
                        choices=PRECISIONS)
    parser.add_argument("--output-dir", default="runs/mixed_precision")
    args, example_args = parser.parse_known_args(argv)
    example = load_example()
    rows = []
    for precision in args.precisions:
        print(f"\n=== {precision} ===")
        results = example.main(
            [
                *example_args,
                "--precision", precision,
                "--output-dir", f"{args.output_dir}/{precision}",
            ]
        )
        losses = results["history"]["loss"]
        rows.append(
            (
                precision,
                results["steps"] * results["batch_size"]
                / results["train_seconds"],
                losses[-1],
                any(not math.isfinite(loss) for loss in losses),
                results["test_after"]["loss"],
                results["test_after"]["patch_accuracy"],
            )
        )
    print(f"\n{'precision':16}{'images/s':>10}{'train loss':>12}"
          f"{'NaN':>6}{'test loss':>11}{'test patch acc.':>17}")
    for precision, rate, loss, nan, test_loss, accuracy in rows:
        print(f"{precision:16}{rate:>10.1f}{loss:>12.3f}"
              f"{'yes' if nan else 'no':>6}{test_loss:>11.3f}"
              f"{accuracy:>17.3f}")
    return rows


if __name__ == "__main__":
    main()
