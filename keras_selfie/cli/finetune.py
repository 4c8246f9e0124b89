"""`keras-selfie finetune`: a ResNet-50 from Selfie (or from scratch)."""

import os

from keras_selfie.cli import common

HELP = "fine-tune a ResNet-50 from a pretrained file on a share of labels"
DESCRIPTION = """\
Fine-tunes a ResNet-50 whose conv1-conv4 come from the pretrained patch
network (conv5 and the classifier start fresh) on a class-stratified share
of the labeled training images (--label-fraction; the same images for a
given --seed), then reports its accuracy on the test images. With
--from-scratch, the same architecture starts from random weights: the
supervised baseline of the paper's Table 1 (give --pretrained as well to
take the architecture from that file).

SGD with momentum 0.9, linear warm-up and cosine decay, the pad-and-crop +
flip augmentation. Writes OUTPUT_DIR/finetuned_resnet50.keras (logits) and
OUTPUT_DIR/results.json.

Example:
  keras-selfie finetune --pretrained runs/selfie/selfie_pretrainer.keras \\
      --dataset cifar10 --label-fraction 0.08 --epochs 30"""


def add_parser(subparsers):
    from keras_selfie.models.resnet import STEMS

    parser = common.add_subparser(subparsers, "finetune", HELP, DESCRIPTION)
    common.add_pretrained_argument(parser, required=False)
    parser.add_argument(
        "--from-scratch", action="store_true",
        help="train the same ResNet-50 from random weights (the baseline)",
    )
    common.add_data_arguments(parser, test_split=True, labeled=True)
    add = parser.add_argument_group("from scratch without --pretrained")
    add.add_argument("--image-size", type=common.positive_int, default=32,
                     help="image side (with --pretrained: the file's)")
    add.add_argument("--stem", choices=STEMS,
                     default="cifar")
    add.add_argument("--width", type=common.positive_float, default=0.25,
                     help="width multiplier of the ResNet-50")
    add = parser.add_argument_group("training").add_argument
    add("--label-fraction", type=common.fraction, default=0.1,
        help="share of each class's labeled training images to train on")
    add("--seed", type=common.non_negative_int, default=0,
        help="seed of the label subset, the fresh weights and the data "
        "order")
    add("--epochs", type=common.positive_int, default=30)
    add("--steps-per-epoch", type=common.positive_int, default=None,
        help="default: one pass over the labeled subset")
    add("--batch-size", type=common.positive_int, default=64)
    add("--learning-rate", type=common.positive_float, default=0.1)
    add("--weight-decay", type=common.non_negative_float, default=5e-4)
    add("--warmup-epochs", type=common.non_negative_int, default=1)
    add("--test-images", type=common.positive_int, default=None,
        help="evaluate on the first N test images (default: all)")
    add("--run-eagerly", action="store_true",
        help="no tf.function (debugging; no tracing)")
    add("--output-dir", default="runs/finetune", metavar="DIR")
    add("--verbose", choices=common.VERBOSITIES, default="auto")
    parser.set_defaults(run=run)
    return parser


def run(args):
    import keras

    from keras_selfie import data
    from keras_selfie import training
    from keras_selfie.evaluation import finetune

    if args.pretrained is None and not args.from_scratch:
        raise common.CommandError(
            "give --pretrained FILE (a SelfiePretrainer .keras file), or "
            "--from-scratch for the supervised baseline"
        )
    pretrainer = None
    if args.pretrained is not None:
        pretrainer = common.load_pretrainer(args.pretrained)
    image_size = (
        pretrainer.image_size[0] if pretrainer is not None
        else args.image_size
    )
    dataset, image_folder = common.data_source(args)
    train, test, num_classes = training.labeled_splits(
        dataset, image_folder, args.split, args.test_split, image_size,
        args.data_dir,
    )
    subset, _ = data.labeled_subset(train, args.label_fraction,
                                    seed=args.seed)
    labels = [label for _, label in subset.as_numpy_iterator()]
    steps = args.steps_per_epoch or max(len(labels) // args.batch_size, 1)
    if args.test_images:
        test = test.take(args.test_images)
    keras.utils.set_random_seed(args.seed)
    result = finetune(
        pretrainer,
        data.make_dataset(
            subset, args.batch_size,
            augment=data.finetuning_augmentation(image_size),
            repeat=True, seed=args.seed,
        ),
        data.make_dataset(test, 256, training=False),
        num_classes=num_classes,
        epochs=args.epochs,
        from_scratch=args.from_scratch,
        stem=None if pretrainer else args.stem,
        width=None if pretrainer else args.width,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        warmup_epochs=min(args.warmup_epochs, args.epochs - 1),
        steps_per_epoch=steps,
        verbose=common.verbosity(args.verbose),
        run_eagerly=args.run_eagerly,
    )
    os.makedirs(args.output_dir, exist_ok=True)
    model_path = os.path.join(args.output_dir, "finetuned_resnet50.keras")
    result["model"].save(model_path)
    results = {
        "test_accuracy": result["accuracy"],
        "test_loss": result["loss"],
        "init": "scratch" if args.from_scratch else "selfie",
        "pretrained": args.pretrained,
        "label_fraction": args.label_fraction,
        "num_labeled_images": len(labels),
        "num_classes": num_classes,
        "seed": args.seed,
        "epochs": args.epochs,
        "steps_per_epoch": steps,
        "history": result["history"].history,
    }
    results_path = common.write_json(
        os.path.join(args.output_dir, "results.json"), results
    )
    print(f"\nFine-tuned ({results['init']}) on {len(labels)} labeled images "
          f"({args.label_fraction:g} of each class): test accuracy "
          f"{result['accuracy']:.4f}")
    common.print_written([
        ("the fine-tuned ResNet-50, logits", model_path),
        ("test accuracy and history", results_path),
    ])
    return results
