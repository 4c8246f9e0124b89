"""The `keras-selfie` command line: pretrain, finetune, evaluate, ...

    keras-selfie pretrain --dataset cifar10 --epochs 10 --output-dir runs/selfie
    keras-selfie evaluate --pretrained runs/selfie/selfie_pretrainer.keras
    python -m keras_selfie finetune --help

Each subcommand lives in its own module with `add_parser(subparsers)` and
`run(args)`; the training pieces they use are in `keras_selfie.training`,
shared with the examples.
"""

import argparse
import sys

from keras_selfie.cli import evaluate
from keras_selfie.cli import export
from keras_selfie.cli import finetune
from keras_selfie.cli import methods
from keras_selfie.cli import pretrain
from keras_selfie.cli import visualize
from keras_selfie.cli.common import CommandError
from keras_selfie.cli.common import HelpFormatter

SUBCOMMANDS = (pretrain, finetune, evaluate, visualize, export, methods)

DESCRIPTION = """\
Selfie: self-supervised pretraining of a ResNet-50 by masked patch
prediction (Trinh, Luong, Le, 2019), for Keras 3 and TensorFlow.

A typical session:
  keras-selfie pretrain --dataset cifar10 --output-dir runs/selfie
  keras-selfie evaluate --pretrained runs/selfie/selfie_pretrainer.keras
  keras-selfie finetune --pretrained runs/selfie/selfie_pretrainer.keras \\
      --label-fraction 0.08
  keras-selfie visualize --pretrained runs/selfie/selfie_pretrainer.keras
  keras-selfie export --pretrained runs/selfie/selfie_pretrainer.keras
  keras-selfie methods    # the pretext tasks: pretrain --method NAME

`keras-selfie COMMAND --help` describes each command."""


def build_parser():
    """The argument parser of `keras-selfie`, one subparser a command."""
    parser = argparse.ArgumentParser(
        prog="keras-selfie",
        description=DESCRIPTION,
        formatter_class=HelpFormatter,
    )
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True
    )
    for module in SUBCOMMANDS:
        module.add_parser(subparsers)
    return parser


def main(argv=None):
    """Runs `keras-selfie` with `argv` (default: `sys.argv[1:]`).

    Returns:
        The exit status: 0 on success, 2 for a usage error (a message on
        stderr; argparse's own errors exit with 2 as well), 1 for a run
        that failed (a diverging loss).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (CommandError, ValueError, FileNotFoundError) as error:
        print(f"keras-selfie {args.command}: error: {error}", file=sys.stderr)
        return getattr(error, "status", 2)
    return 0
