"""`keras-selfie evaluate`: kNN and linear-probe accuracy of frozen P."""

from keras_selfie.cli import common

HELP = "measure the pretrained features: kNN and linear-probe accuracy"
DESCRIPTION = """\
Measures how good the pretrained patch network P is as a frozen feature
extractor on labeled images: features of whole images (inference mode),
then a cosine k-nearest-neighbour vote (--method knn) and/or a linear
classifier trained on them (--method linear). Writes the accuracies
to a JSON file.

Example:
  keras-selfie evaluate --pretrained runs/selfie/selfie_pretrainer.keras \\
      --dataset cifar10 --method both"""

# What `--method` measures: the kNN vote, the linear probe or both.
METHODS = ("knn", "linear", "both")


def add_parser(subparsers):
    parser = common.add_subparser(subparsers, "evaluate", HELP, DESCRIPTION)
    common.add_pretrained_argument(parser)
    common.add_data_arguments(parser, test_split=True, labeled=True)
    add = parser.add_argument_group("evaluation").add_argument
    add("--method", choices=METHODS, default="both")
    add("--train-images", type=common.positive_int, default=10000,
        help="labeled training images (kNN memory bank, probe training)")
    add("--test-images", type=common.positive_int, default=10000,
        help="test images classified")
    add("--k", type=common.positive_int, default=20,
        help="neighbours per kNN vote (all training images if fewer)")
    add("--temperature", type=common.positive_float, default=0.07,
        help="kNN vote weight exp(similarity / temperature)")
    add("--probe-epochs", type=common.positive_int, default=100,
        help="epochs of the linear probe")
    add("--seed", type=common.non_negative_int, default=0,
        help="seed of the linear probe")
    add("--output", default=None, metavar="FILE",
        help="results file (default: evaluation.json beside --pretrained)")
    parser.set_defaults(run=run)
    return parser


def run(args):
    from keras_selfie import evaluation
    from keras_selfie import training

    pretrainer = common.load_pretrainer(args.pretrained)
    dataset, image_folder = common.data_source(args)
    train, test, num_classes = training.labeled_splits(
        dataset, image_folder, args.split, args.test_split,
        pretrainer.image_size[0], args.data_dir,
    )
    train = train.take(args.train_images)
    test = test.take(args.test_images)
    results = {"pretrained": args.pretrained}
    if args.method in ("knn", "both"):
        train_features = evaluation.extract_features(pretrainer, train)
        test_features = evaluation.extract_features(pretrainer, test)
        k = min(args.k, len(train_features[1]))
        results["knn_accuracy"] = float(evaluation.knn_accuracy(
            *train_features, *test_features, k=k,
            temperature=args.temperature,
        ))
        results.update(k=k, temperature=args.temperature,
                       num_train_images=len(train_features[1]),
                       num_test_images=len(test_features[1]))
    if args.method in ("linear", "both"):
        probe = evaluation.linear_probe(
            pretrainer, train, test, epochs=args.probe_epochs,
            num_classes=num_classes, seed=args.seed,
        )
        results["linear_probe_accuracy"] = probe["accuracy"]
        results["probe_epochs"] = args.probe_epochs
    output = common.beside_pretrained(args, "evaluation.json")
    common.write_json(output, results)
    print()
    for key in ("knn_accuracy", "linear_probe_accuracy"):
        if key in results:
            print(f"{key.replace('_', ' ')}: {results[key]:.4f}")
    common.print_written([("accuracies", output)])
    return results
