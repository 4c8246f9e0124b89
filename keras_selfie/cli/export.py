"""`keras-selfie export`: the pretrained network, ready to use elsewhere."""

import os

from keras_selfie.cli import common

HELP = "export a ResNet-50 with the pretrained weights, or the patch network"
DESCRIPTION = """\
Writes a standalone .keras model made from a pretrained Selfie model:

  resnet50       a ResNet-50 (keras.applications layer names) whose
                 conv1-conv4 hold the pretrained patch network's weights
                 and whose conv5 and classifier (--classes, logits) are
                 fresh: ready to fine-tune;
  patch-network  the patch network P itself (ResNet-50 stages 1-3 and
                 average pooling): images in, features out.

Example:
  keras-selfie export --pretrained runs/selfie/selfie_pretrainer.keras \\
      --what resnet50 --classes 10 --output resnet50_selfie.keras"""

DEFAULT_NAMES = {
    "resnet50": "resnet50_from_selfie.keras",
    "patch-network": "patch_network.keras",
}


def add_parser(subparsers):
    parser = common.add_subparser(subparsers, "export", HELP, DESCRIPTION)
    common.add_pretrained_argument(parser)
    parser.add_argument("--what", choices=tuple(DEFAULT_NAMES),
                        default="resnet50", help="what to export")
    parser.add_argument("--classes", type=common.positive_int, default=10,
                        help="classes of the ResNet-50's classifier")
    parser.add_argument(
        "--output", default=None, metavar="FILE",
        help="the .keras file (default: resnet50_from_selfie.keras or "
        "patch_network.keras beside --pretrained)",
    )
    parser.set_defaults(run=run)
    return parser


def run(args):
    from keras_selfie.models.transfer import transfer_to_resnet50

    pretrainer = common.load_pretrainer(args.pretrained)
    output = common.beside_pretrained(args, DEFAULT_NAMES[args.what])
    if not output.endswith(".keras"):
        raise common.CommandError(
            f"--output must end in .keras; got {output!r}"
        )
    if args.what == "resnet50":
        model = transfer_to_resnet50(
            pretrainer, classes=args.classes, classifier_activation=None
        )
        label = (f"ResNet-50, conv1-conv4 from P, {args.classes} classes, "
                 "logits")
    else:
        model = pretrainer.patch_network
        label = f"patch network P, features of size {pretrainer.feature_dim}"
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    model.save(output)
    common.print_written([(label, output)])
    return output
