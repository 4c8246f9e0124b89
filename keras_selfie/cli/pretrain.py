"""`keras-selfie pretrain`: Selfie pretraining that resumes after a kill."""

import os

from keras_selfie.cli import common

HELP = "pretrain a SelfiePretrainer on unlabeled images"
DESCRIPTION = """\
Pretrains Selfie on unlabeled images (a TFDS dataset or a folder): every
step hides M of the N patches of each image, and the model learns to pick
the right patch for each hidden position among the M hidden ones.

The run lives in --output-dir. A backup is written there after every epoch
(or every --backup-every-steps steps); if the run is killed, the same
command resumes from the last backup: weights, optimizer state, step
counter, epoch and random state come back, and the input pipeline skips
the batches already seen (backups at epoch ends resume exactly).
--no-resume starts over instead.

At the end, OUTPUT_DIR holds selfie_pretrainer.keras (the model; give it
to finetune, evaluate, visualize, export), checkpoints/last.keras (the last
completed epoch, kept during the run), history.csv and history.json (loss,
patch_accuracy, knn_accuracy per epoch) and training_curves.png.

Defaults are sized for a CPU (ResNet-50 stages 1-3 at width 0.25); the
paper's network is --width 1.0 --num-layers 3 --num-heads 32.

Example:
  keras-selfie pretrain --dataset cifar10 --epochs 10 --batch-size 64 \\
      --knn-every 2 --output-dir runs/selfie"""


def add_parser(subparsers):
    from keras_selfie.models.resnet import STEMS
    from keras_selfie.models.selfie_pretrainer import PRECISIONS
    from keras_selfie.models.selfie_pretrainer import QUERIES
    from keras_selfie.optimizers import OPTIMIZERS
    from keras_selfie.utils.distribution import STRATEGIES

    from keras_selfie import methods
    from keras_selfie.presets import PRESETS

    parser = common.add_subparser(subparsers, "pretrain", HELP, DESCRIPTION)
    parser.add_argument(
        "--method", choices=methods.names(), default="selfie",
        help="the pretext task (`keras-selfie methods` lists them); the "
        "options of the groups 'images and patches' and 'model' other than "
        "--image-size, --stem and --width are Selfie's")
    parser.add_argument(
        "--preset", choices=sorted(PRESETS), default="cpu",
        help="the network and run every unset option below comes from "
        "(keras_selfie.presets.list() describes them): cpu is the "
        "quarter-width network, 10 epochs of 120 steps of batch 64; "
        "paper_cifar10 and paper_imagenet224 the paper's")
    common.add_data_arguments(parser)
    add = parser.add_argument_group("images and patches").add_argument
    add("--image-size", type=common.positive_int, default=None,
        help="side of the (square) images; folder images are "
        "center-cropped to it, TFDS images must have it")
    add("--patch-size", type=common.positive_int, default=None,
        help="side of the square patches; must divide --image-size "
        "(the paper: 8 for 32x32 images, 32 for 224x224)")
    add("--num-decoder-patches", type=common.positive_int, default=None,
        metavar="M", help="patches to predict per image, 2 <= M < N/2 "
        "(default: N // 4)")

    add = parser.add_argument_group("model").add_argument
    add("--stem", choices=STEMS, default=None,
        help="ResNet stem: 3x3 convolution for small patches (cifar) or "
        "the 7x7 ImageNet stem for 32x32 patches")
    add("--width", type=common.positive_float, default=None,
        help="width multiplier of ResNet-50 stages 1-3 (1.0 = the paper)")
    add("--num-layers", type=common.positive_int, default=None,
        help="Transformer layers of the attention pooling")
    add("--query", choices=QUERIES, default=None,
        help="'context': a query per masked position computed from the "
        "visible patches, candidates from the whole batch, cosine scores "
        "(the default); 'paper': the paper's u + PE(j) with the image's own "
        "candidates and dot products")
    add("--num-heads", type=common.positive_int, default=None,
        help="attention heads; must divide the feature size "
        "1024 * width")
    add("--intermediate-dim", type=common.positive_int, default=None,
        help="feed-forward width of the attention pooling")

    add = parser.add_argument_group("training").add_argument
    add("--epochs", type=common.positive_int, default=None)
    add("--steps-per-epoch", type=common.positive_int, default=None,
        help="steps per epoch (default: the preset's; where the preset "
        "says none, one pass over the images)")
    add("--batch-size", type=common.positive_int, default=None,
        help="global batch size (split between the replicas)")
    add("--optimizer", choices=OPTIMIZERS, default=None,
        help="SGD with Nesterov momentum 0.9, or AdamW")
    add("--learning-rate", type=common.positive_float, default=None,
        help="peak learning rate (default: 0.1 for sgd, 1e-3 for adamw); "
        "linear warm-up, then cosine decay to 0")
    add("--weight-decay", type=common.non_negative_float, default=None)
    add("--warmup-epochs", type=common.non_negative_int, default=None)
    add("--strategy", choices=STRATEGIES, default="default",
        help="tf.distribute strategy: default (one device), mirrored (all "
        "local GPUs), multi_worker (several machines; each reads the "
        "cluster and its own index from the TF_CONFIG environment "
        "variable, e.g. TF_CONFIG='{\"cluster\": {\"worker\": [\"h1:12345\", "
        "\"h2:12345\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}'), "
        "tpu")
    add("--seed", type=common.non_negative_int, default=0,
        help="seed of the initial weights, the data order and augmentation "
        "and the masked positions")
    add("--deterministic", action="store_true",
        help="deterministic TensorFlow ops (slower; bit-exact reruns and "
        "resumes)")
    add("--precision", default="float32", choices=PRECISIONS,
        help="dtype policy: 16-bit P and attention pooling with float32 "
        "weights, scores and loss (bfloat16 suits CPUs and TPUs, float16 "
        "GPUs)")
    add("--synchronized-batch-norm", action="store_true",
        help="batch-norm statistics over the global batch of all replicas "
        "(without it each replica normalises its own share, and the "
        "moving statistics differ slightly between workers)")
    add("--jit-compile", action="store_true",
        help="compile the training step with XLA (without it, Keras "
        "decides: XLA on a GPU, not on a CPU)")
    add("--run-eagerly", action="store_true",
        help="run the step eagerly, without tf.function (for debugging; "
        "slow, but no tracing)")

    add = parser.add_argument_group("output and monitoring").add_argument
    add("--output-dir", default="runs/selfie", metavar="DIR")
    add("--backup-every-steps", type=common.positive_int, default=None,
        metavar="N", help="back up every N steps instead of every epoch "
        "(for long epochs; Keras resumes at the start of the interrupted "
        "epoch, so the steps of it done before the backup are repeated)")
    add("--no-resume", action="store_true",
        help="start over: delete the backup and the log of an earlier run "
        "in --output-dir instead of resuming it")
    add("--knn-every", type=common.non_negative_int, default=0, metavar="N",
        help="every N epochs (and after the last), the kNN accuracy of the "
        "features on labeled held-out images (TFDS: --knn-split; folder "
        "with class subfolders: 20%% held out); 0: never")
    add("--knn-split", default="test",
        help="TFDS split classified by the kNN monitor")
    add("--knn-train-images", type=common.positive_int, default=2000,
        help="labeled training images forming the kNN memory bank "
        "(votes of the 20 nearest, or of all if fewer)")
    add("--knn-test-images", type=common.positive_int, default=1000,
        help="held-out images classified by the kNN monitor")
    add("--tensorboard", action="store_true",
        help="also write TensorBoard logs to OUTPUT_DIR/logs")
    add("--verbose", choices=common.VERBOSITIES, default="auto",
        help="Keras verbosity: 1 progress bars, 2 one line per epoch")
    parser.set_defaults(run=run)
    return parser


def _knn_monitor(args, dataset, image_folder):
    """A `KNNMonitor` on held-out labeled images, or `None` without labels."""
    from keras_selfie import evaluation
    from keras_selfie import training

    try:
        train, test, _ = training.labeled_splits(
            dataset, image_folder, args.split, args.knn_split,
            args.image_size, args.data_dir,
        )
    except ValueError as error:
        print(f"No kNN monitor: the data has no labels ({error})")
        return None
    return evaluation.KNNMonitor(
        train.take(args.knn_train_images),
        test.take(args.knn_test_images),
        every_n_epochs=args.knn_every,
        k=min(20, args.knn_train_images),
    )


# Flags that set constructor arguments of the pretrainer.
MODEL_OPTIONS = (
    "image_size", "patch_size", "num_decoder_patches", "query", "stem",
    "width", "num_layers", "num_heads", "intermediate_dim",
)


def run(args):
    from keras_selfie import presets
    from keras_selfie import training

    # The model options the user gave; the rest comes from the preset, as
    # far as the method has such an argument.
    config = {key: getattr(args, key) for key in MODEL_OPTIONS}
    if args.synchronized_batch_norm:
        config["synchronized_batch_norm"] = True
    # Unset flags take the preset's values (the image size is needed to
    # read a folder).
    presets.fill_arguments(args, args.preset)
    config["dtype"] = args.precision
    dataset, image_folder = common.data_source(args)
    images = training.load_images(
        dataset, image_folder, args.split, args.image_size,
        data_dir=args.data_dir,
    )
    monitors = []
    if args.knn_every:
        monitor = _knn_monitor(args, dataset, image_folder)
        monitors = [monitor] if monitor else []
    try:
        run = training.run_pretraining(
            images,
            args.output_dir,
            preset=args.preset,
            method=args.method,
            config=config,
            **presets.pretraining_arguments(args),
            seed=args.seed,
            deterministic=args.deterministic,
            strategy=args.strategy,
            resume=not args.no_resume,
            monitors=monitors,
            log_keys=("knn_accuracy",) if monitors else (),
            backup_every_steps=args.backup_every_steps,
            tensorboard=args.tensorboard,
            plot_curves=True,
            jit_compile=True if args.jit_compile else "auto",
            run_eagerly=args.run_eagerly,
            verbose=common.verbosity(args.verbose),
            data_name=dataset or image_folder,
        )
    except training.DivergenceError as error:
        raise common.CommandError(
            f"{error} (--learning-rate)", status=1
        ) from None
    history = run.history
    last = [f"{key} {history[key][-1]:.4f}"
            for key in (*run.pretrainer.metric_directions(), "knn_accuracy")
            if history.get(key) and history[key][-1] is not None]
    steps_done = int(run.pretrainer.optimizer.iterations.numpy())
    print(f"\n{type(run.pretrainer).__name__} pretraining done: "
          f"{steps_done} steps in total, "
          f"{run.seconds / 60:.1f} min in this run. Last epoch: "
          + ", ".join(last))
    files = dict(run.files)
    files["the last completed epoch"] = os.path.join(
        run.output_dir, training.callbacks.CHECKPOINT_PATH
    )
    if args.tensorboard:
        files["TensorBoard logs"] = os.path.join(
            run.output_dir, training.callbacks.TENSORBOARD_DIR
        )
    common.print_written(list(files.items()))
    return run.pretrainer
