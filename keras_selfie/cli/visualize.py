"""`keras-selfie visualize`: what the pretrained model predicts."""

import os
import textwrap

from keras_selfie.cli import common
from keras_selfie.visualization import picture_descriptions

HELP = "draw a pretrained model's predictions on a few images as a PNG"
DESCRIPTION = (
    "Draws what a pretrained model predicts on the first images of a\n"
    "split, one picture per pretext task (green: right, red: wrong):\n"
    + "\n".join(
        textwrap.fill(
            f"{name}: {description}", 79, initial_indent="  ",
            subsequent_indent="    ",
        )
        for name, description in picture_descriptions().items()
    )
    + """

The model runs in inference mode; its random draws (masked positions,
puzzles, pairs, views...) come from --seed, so a run draws the same
picture again.

Example:
  keras-selfie visualize --pretrained runs/rot/rotation_pretrainer.keras \\
      --dataset cifar10 --split test --num-images 8"""
)


def add_parser(subparsers):
    parser = common.add_subparser(subparsers, "visualize", HELP, DESCRIPTION)
    common.add_pretrained_argument(parser)
    common.add_data_arguments(parser, default_split="test")
    add = parser.add_argument_group("figure").add_argument
    add("--num-images", type=common.positive_int, default=8,
        help="images drawn (the first of the split)")
    add("--seed", type=common.non_negative_int, default=0,
        help="seed of the model's random draws in the picture")
    add("--image-index", type=common.non_negative_int, default=None,
        help="selfie only: the image whose candidate ranking is drawn; 0 "
        "unless given")
    add("--position-index", type=common.non_negative_int, default=None,
        help="selfie only: which of that image's masked positions is "
        "ranked; 0 unless given")
    add("--output", default=None, metavar="FILE",
        help="PNG file (default: predictions.png beside --pretrained)")
    parser.set_defaults(run=run)
    return parser


def run(args):
    from keras_selfie import training
    from keras_selfie.visualization import plot_predictions

    pretrainer = common.load_pretrainer(args.pretrained)
    # Selfie's options, passed only when given: other pictures have none.
    options = {
        name: getattr(args, name)
        for name in ("image_index", "position_index")
        if getattr(args, name) is not None
    }
    if options.get("image_index", 0) >= args.num_images:
        raise common.CommandError(
            f"--image-index must be smaller than --num-images "
            f"({args.num_images}); got {args.image_index}"
        )
    dataset, image_folder = common.data_source(args)
    images = training.load_images(
        dataset, image_folder, args.split, pretrainer.image_size[0],
        data_dir=args.data_dir,
    )
    images = common.image_array(images, args.num_images)
    output = common.beside_pretrained(args, "predictions.png")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    plot_predictions(
        pretrainer, images, path=output, seed=args.seed, **options
    )
    common.print_written([
        (f"predictions on {len(images)} images", output)
    ])
    return output
