"""`keras-selfie visualize`: what the pretrained model predicts."""

import os

from keras_selfie.cli import common

HELP = "draw the masked patches and the model's picks as a PNG"
DESCRIPTION = """\
Draws what a pretrained Selfie model predicts (the paper's Figure 3): the
images with their masked positions outlined (green: the model picks the
right patch among the masked ones, red: it does not), and for one masked
position of one image the candidate patches ranked by score.

Example:
  keras-selfie visualize --pretrained runs/selfie/selfie_pretrainer.keras \\
      --dataset cifar10 --split test --num-images 8"""


def add_parser(subparsers):
    parser = common.add_subparser(subparsers, "visualize", HELP, DESCRIPTION)
    common.add_pretrained_argument(parser)
    common.add_data_arguments(parser, default_split="test")
    add = parser.add_argument_group("figure").add_argument
    add("--num-images", type=common.positive_int, default=8,
        help="images drawn (the first of the split)")
    add("--image-index", type=common.non_negative_int, default=0,
        help="image whose candidate ranking is drawn")
    add("--position-index", type=common.non_negative_int, default=0,
        help="which of that image's masked positions is ranked")
    add("--output", default=None, metavar="FILE",
        help="PNG file (default: predictions.png beside --pretrained)")
    parser.set_defaults(run=run)
    return parser


def run(args):
    from keras_selfie import training
    from keras_selfie.visualization import plot_predictions

    pretrainer = common.load_pretrainer(args.pretrained)
    if args.image_index >= args.num_images:
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
        pretrainer, images, path=output, image_index=args.image_index,
        position_index=args.position_index,
    )
    common.print_written([
        (f"predictions on {len(images)} images", output)
    ])
    return output
