"""Argument types, shared flags and helpers of the subcommands."""

import argparse
import json
import os
import pathlib


class HelpFormatter(
    argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter
):
    """Shows defaults and keeps the description's line breaks."""


class CommandError(Exception):
    """A failure to report in one line: a usage mistake found after parsing
    (exit status 2) or a run that failed (`status=1`)."""

    def __init__(self, message, status=2):
        super().__init__(message)
        self.status = status


def _number(kind, accept, what):
    """An argparse `type` parsing `kind` values that satisfy `accept`."""

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    return parse


positive_int = _number(int, lambda value: value >= 1, "a positive integer")
non_negative_int = _number(int, lambda value: value >= 0, "an integer >= 0")
positive_float = _number(float, lambda value: value > 0, "a number > 0")
non_negative_float = _number(float, lambda value: value >= 0, "a number >= 0")
fraction = _number(float, lambda value: 0 < value <= 1, "a number in (0, 1]")

# Keras' `verbose` of `fit` and `evaluate`, as `--verbose` spells it.
VERBOSITIES = ("auto", "0", "1", "2")


def verbosity(value):
    """Keras' `verbose` from a `--verbose` value: `"auto"` or an int."""
    return value if value == "auto" else int(value)


def add_subparser(subparsers, name, help, description):
    """A subcommand's parser, showing defaults and the description as is."""
    return subparsers.add_parser(
        name, help=help, description=description,
        formatter_class=HelpFormatter,
    )


def beside_pretrained(args, filename):
    """`args.output`, or `filename` in the folder of `args.pretrained`."""
    return args.output or os.path.join(
        os.path.dirname(os.path.abspath(args.pretrained)), filename
    )


def add_data_arguments(parser, default_split="train", test_split=False,
                       labeled=False):
    """`--dataset NAME | --image-folder DIR`, `--split`, `--data-dir`."""
    group = parser.add_argument_group("data")
    source = group.add_mutually_exclusive_group()
    source.add_argument(
        "--dataset", default=None, metavar="NAME",
        help="a TensorFlow Datasets name, e.g. cifar10, stl10, "
        "imagenet2012 (default: cifar10 unless --image-folder is given)",
    )
    source.add_argument(
        "--image-folder", default=None, metavar="DIR",
        help="a folder of image files instead: "
        + ("one subfolder per class (DIR/<class>/*.png); "
           if labeled else "the images themselves, or one subfolder per "
           "class; ")
        + "images of other sizes are center-cropped to --image-size",
    )
    group.add_argument(
        "--split", default=default_split,
        help="TFDS split to read, slices allowed (e.g. 'train[:10%%]')",
    )
    if test_split:
        group.add_argument(
            "--test-split", default="test",
            help="TFDS split to evaluate on; with --image-folder a fixed, "
            "class-stratified 20%% of the folder is held out instead",
        )
    group.add_argument(
        "--data-dir", default=None, metavar="DIR",
        help="TFDS data folder (default: $TFDS_DATA_DIR, else TFDS's own "
        "~/tensorflow_datasets, where missing data is downloaded)",
    )
    return group


def data_source(args):
    """`(dataset, image_folder)` with cifar10 as the default dataset."""
    if args.image_folder is None and args.dataset is None:
        return "cifar10", None
    return args.dataset, args.image_folder


def add_pretrained_argument(parser, required=True):
    parser.add_argument(
        "--pretrained", required=required, metavar="FILE",
        help="a pretrained model's .keras file, of any method (what "
        "`keras-selfie pretrain --method M` writes as M_pretrainer.keras, "
        "e.g. selfie_pretrainer.keras)",
    )


def load_pretrainer(path):
    """Loads a pretrainer (any method) for `--pretrained`, or fails in one
    line."""
    from keras_selfie.models.saving import load_pretrainer as load

    try:
        return load(path)
    except ValueError as error:
        raise CommandError(
            f"--pretrained {path}: {error} Pass the METHOD_pretrainer.keras "
            "that `keras-selfie pretrain` writes (e.g. "
            "selfie_pretrainer.keras)."
        ) from None


def image_array(images, count):
    """The first `count` images of an unbatched dataset, as a uint8 array."""
    import numpy as np

    batches = list(images.take(count).batch(count).as_numpy_iterator())
    if not batches:
        raise CommandError("The data holds no image.")
    return np.asarray(batches[0])


def write_json(path, values):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values, indent=2, default=_plain))
    return path


def _plain(value):
    # NumPy scalars and paths in results.
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def print_written(paths):
    """The closing summary: one `Written:` line per file."""
    print()
    for label, path in paths:
        print(f"Written: {os.path.abspath(path)}  ({label})")
