"""`keras-selfie methods`: the pretext tasks `pretrain --method` takes."""

HELP = "list the pretext tasks (pretrain --method NAME)"
DESCRIPTION = """\
Lists the registered pretext tasks, one a line: the name that
`keras-selfie pretrain --method NAME` takes, and what the task is. Every
method pretrains the same backbone P, transfers into the same ResNet-50
and goes through the same evaluation.

Example:
  keras-selfie methods"""


def add_parser(subparsers):
    from keras_selfie.cli import common

    parser = common.add_subparser(subparsers, "methods", HELP, DESCRIPTION)
    parser.set_defaults(run=run)
    return parser


def listing():
    """The registered methods, one a line: name and description."""
    from keras_selfie import methods

    listed = methods.list()
    width = max(len(name) for name in listed)
    return "".join(
        f"{name:{width}}  {description}\n"
        for name, description in listed.items()
    )


def run(args):
    print(listing(), end="")
