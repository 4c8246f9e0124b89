"""What does a pretraining method cost beyond running its backbone P?

For each method (`--method`, Selfie by default; `--methods a b c` or
`--methods all` measures several in one process) and each `--batch-sizes`
value, builds in one process

(a) the method's training step on a batch of `B` images, and
(b) the training step of P alone (a clone of the method's P: the same
    architecture, width, stem and precision) on exactly the tensors the
    method feeds P in one step, with a trivial loss (the mean square of the
    features),

warms both up, then times them in interleaved windows (a, b, a, b, ...:
both see the same load if other processes share the CPU) and prints each
one's images/s (median over windows) and

    R = t_method / t_backbone   (median of the per-round ratios; also in
                                 process CPU time, R_cpu, steadier on a
                                 shared machine),
    F = flops_method / flops_backbone,

where the FLOPs are the sum of TensorFlow's per-op FLOP statistics (the
ones `tf.compat.v1.profiler` reports with `float_operation()`) over each
model's whole `train_step` (forward, backward, optimizer update, metrics)
traced as a graph, with two corrections: `Einsum`, which TensorFlow does
not count, is `2 * prod(all index sizes)`, and `BatchMatMul`, whose count
ignores `adj_x` (so the gradients of attention count ~100x too much), is
`2 * k * output size`. `R <= 1.1 * F` means that the parts of the method
around P (Selfie's patch extraction, split, gathers, attention pooling and
loss; rotation's rotations and head; ...) take no more time than their
share of the arithmetic. Also prints the peak memory: the GPU allocator's
peak per step where there is a GPU, else the process's peak resident set
size (`getrusage`) after each warm-up.

What a method feeds P is recorded, not written down per method
(`record_p_inputs`): one training forward pass of the method is traced
(`tf.function`; nothing runs) while every call of a network that runs P's
layers (P itself, or the pixel decoders' feature map, which shares them)
records the shape and dtype of its input. Selfie: the `B * N` patches;
rotation: the `4B` rotated images; SimCLR: the `2B` views; the pixel
decoders: the `B` images through P's feature map. The backbone step runs
the same networks, rebuilt on a clone of P (`build_backbone`), on random
tensors of those shapes.

Selfie is built from the flags; every other method from the flags' image
size, stem and width, with its arguments from examples/compare_methods.py
(`METHOD_SETTINGS`: those under which it learns from unlabeled images).
`--zoo PRESET` builds every method as that comparison's preset does (its
network and width, each method's arguments and optimizer; its batch size
unless `--batch-sizes` is given), so that the step timed is the zoo's.

    python benchmarks/step.py --batch-sizes 32 128              # CIFAR
    python benchmarks/step.py --precision mixed_bfloat16
    python benchmarks/step.py --width 0.25 --windows 3 --steps 2
    python benchmarks/step.py --method rotation --width 0.25
    python benchmarks/step.py --zoo cpu --methods all           # the zoo's
"""

import argparse
import contextlib
import dataclasses
import functools
import math
import operator
import os
import pathlib
import resource
import statistics
import sys
from unittest import mock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402
from tensorflow.python.framework import ops as tf_ops  # noqa: E402
from tensorflow.python.profiler.internal import (  # noqa: E402, F401
    flops_registry,  # Registers TensorFlow's per-op FLOP counts.
)

import keras_selfie  # noqa: E402
from keras_selfie import methods  # noqa: E402
from keras_selfie import presets  # noqa: E402
from keras_selfie.optimizers import build_optimizer_variables  # noqa: E402
from keras_selfie.optimizers import make_optimizer  # noqa: E402
from keras_selfie.utils.distribution import STRATEGIES  # noqa: E402
from keras_selfie.utils.distribution import get_strategy  # noqa: E402
from timing import interleaved_times  # noqa: E402
from timing import machine_line  # noqa: E402

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# The goal: R <= GOAL * F.
GOAL = 1.1
# The network flags' values when neither they nor `--zoo` are given: the
# paper's CIFAR-10 network (full-width P, d = 1024; 3 attention layers, 32
# heads, feed-forward 640) with the default, context-conditioned query.
NETWORK_DEFAULTS = dict(
    presets.get("paper_cifar10")["config"], query="context"
)
DEFAULT_BATCH_SIZES = [32]
# Both steps' optimizer, but under `--zoo` (each method's own there).
DEFAULT_OPTIMIZER = dict(name="sgd", learning_rate=0.1, weight_decay=0.0)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", choices=methods.names(), default=None,
                        help="the method measured (default: selfie)")
    parser.add_argument("--methods", nargs="+", metavar="METHOD",
                        help="several methods, measured one after the "
                        "other in this process, or 'all' (every "
                        f"registered one: {', '.join(methods.names())})")
    parser.add_argument("--zoo", metavar="PRESET",
                        help="build every method as the preset PRESET of "
                        "examples/compare_methods.py does (e.g. cpu): its "
                        "network and width, each method's arguments and "
                        "optimizer, its batch size; of the network flags "
                        "only --width then applies")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None,
                        help="images per global batch; each is measured "
                        f"(default: {DEFAULT_BATCH_SIZES[0]}, or the zoo "
                        "preset's)")
    default = NETWORK_DEFAULTS
    parser.add_argument("--image-size", type=int, default=None,
                        help=f"(default: {default['image_size']})")
    parser.add_argument("--patch-size", type=int, default=None,
                        help=f"Selfie's (default: {default['patch_size']})")
    parser.add_argument("--num-decoder-patches", type=int, default=None,
                        help="Selfie's M (default: N // 4, i.e. 4 of 16)")
    parser.add_argument("--stem", choices=keras_selfie.models.resnet.STEMS,
                        default=None, help=f"(default: {default['stem']})")
    parser.add_argument("--width", type=float, default=None,
                        help="width multiplier of P (default: "
                        f"{default['width']}, d=1024)")
    parser.add_argument("--num-layers", type=int, default=None,
                        help="Transformer layers in Selfie's A (default: "
                        f"{default['num_layers']})")
    parser.add_argument("--num-heads", type=int, default=None,
                        help=f"(default: {default['num_heads']})")
    parser.add_argument("--intermediate-dim", type=int, default=None,
                        help=f"(default: {default['intermediate_dim']})")
    parser.add_argument("--query",
                        choices=keras_selfie.models.selfie_pretrainer.QUERIES,
                        default=None,
                        help="SelfiePretrainer's query (and with it the "
                        "default distractors and scores; 'paper' is "
                        "PAPER.md's formulation; default: "
                        f"{default['query']})")
    parser.add_argument("--precision", choices=PRECISIONS, default="float32",
                        help="Keras dtype policy of both models")
    parser.add_argument("--jit-compile", choices=("auto", "true", "false"),
                        default="auto", help="XLA; 'auto' is Keras' choice "
                        "(off on CPU, on with a GPU)")
    parser.add_argument("--strategy", choices=STRATEGIES, default="default",
                        help="tf.distribute strategy (see "
                        "keras_selfie.utils.distribution.get_strategy)")
    parser.add_argument("--steps", type=int, default=3,
                        help="training steps per timed window (default: 3)")
    parser.add_argument("--windows", type=int, default=5,
                        help="timed windows of each step; medians reported")
    parser.add_argument("--warmup", type=int, default=2,
                        help="untimed steps of each model before timing")
    parser.add_argument("--run-eagerly", action="store_true",
                        help="eager steps (debugging, smoke tests: no graph "
                        "tracing; timings then mean little)")
    parser.add_argument("--no-flops", action="store_true",
                        help="skip the FLOP count (it traces both steps "
                        "once more)")
    args = parser.parse_args(argv)
    if args.method and args.methods:
        parser.error("give --method or --methods, not both")
    names = args.methods or [args.method or "selfie"]
    if names == ["all"]:
        names = methods.names()
    unknown = [name for name in names if name not in methods.names()]
    if unknown:
        parser.error(f"unknown method(s) {unknown}; registered: "
                     f"{methods.names()} (or 'all')")
    args.methods = names
    args.zoo_args = None
    if args.zoo:
        network_flags = [
            f"--{key.replace('_', '-')}"
            for key in (*NETWORK_DEFAULTS, "num_decoder_patches")
            if key != "width" and getattr(args, key) is not None
        ]
        if network_flags:
            parser.error("--zoo builds the zoo preset's network, so not "
                         f"with {', '.join(network_flags)}")
        zoo = zoo_module()
        if args.zoo not in zoo.PRESETS:
            parser.error(f"unknown --zoo {args.zoo!r}; the presets of "
                         f"examples/compare_methods.py: {sorted(zoo.PRESETS)}")
        width = [] if args.width is None else ["--width", str(args.width)]
        args.zoo_args = zoo.parse_args(["--preset", args.zoo, *width])
        args.batch_sizes = args.batch_sizes or [args.zoo_args.batch_size]
    else:
        for key, value in NETWORK_DEFAULTS.items():
            if getattr(args, key) is None:
                setattr(args, key, value)
        args.batch_sizes = args.batch_sizes or DEFAULT_BATCH_SIZES
    return args


def zoo_module():
    """examples/compare_methods.py: the home of the zoo's presets and of
    each method's settings (`METHOD_SETTINGS`, `settings_of`, `build`)."""
    folder = str(pathlib.Path(__file__).resolve().parents[1] / "examples")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    import compare_methods

    return compare_methods


class BackboneStep(keras.Model):
    """P alone, trained on what a method feeds it with a trivial loss (the
    mean squared feature).

    Stands for the part of the method's step that cannot be avoided: P's
    forward and backward passes over every tensor the method feeds it, and
    its update.

    Args:
        network: P.
        networks: what runs on each input, in order: P, or networks on P's
            layers (the feature map of the pixel decoders); `None` for P
            alone on a single input.
    """

    def __init__(self, network, networks=None, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.networks = list(networks or [network])
        # Its networks are built and it has no weights of its own, so that
        # `compile_step` can make the optimizer's variables at once.
        self.built = True

    def call(self, inputs, training=None):
        if len(self.networks) == 1:
            return self.networks[0](inputs, training=training)
        return [
            network(x, training=training)
            for network, x in zip(self.networks, inputs)
        ]

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        return functools.reduce(operator.add, [
            ops.mean(ops.square(ops.cast(features, "float32")))
            for features in tf.nest.flatten(y_pred)
        ])


@dataclasses.dataclass(frozen=True)
class PCall:
    """One call of a network on P's layers in a method's step."""

    network: keras.Model  # The method's own: P, or its feature map.
    shape: tuple  # The input's shape, per replica.
    dtype: str


def p_networks(pretrainer):
    """The pretrainer's networks that run P's layers: `patch_network`, and
    any network sharing its layers (the pixel decoders' `feature_map`)."""
    p_layers = {
        id(layer) for layer in pretrainer.patch_network.layers if layer.weights
    }
    return [
        layer for layer in pretrainer._flatten_layers(include_self=False)
        if isinstance(layer, keras.Model)
        and any(id(inner) in p_layers for inner in layer.layers)
    ]


def _replica_id():
    context = tf.distribute.get_replica_context()
    if context is None:  # Cross-replica context.
        return 0
    return tf.get_static_value(context.replica_id_in_sync_group)


def record_p_inputs(pretrainer, images, strategy):
    """What one training step of `pretrainer` on `images` feeds P.

    Traces the step's forward pass, `pretrainer(x, training=True)` on each
    replica's share of the batch (a `tf.function` traced, never run: no
    variable, statistic or random state changes), while every call of a
    network of `p_networks` records its input: replica 0's calls, the
    outermost only (a network that calls another records once).

    Returns:
        A list of `PCall`, in call order.

    Raises:
        ValueError: for an input whose shape is unknown at trace time.
    """
    networks = p_networks(pretrainer)
    calls = []
    depth = [0]

    def recording(original):
        def __call__(self, *args, **kwargs):
            watched = any(self is network for network in networks)
            if watched and not depth[0] and _replica_id() == 0:
                inputs = args[0] if args else kwargs["inputs"]
                shape = tuple(inputs.shape)
                if None in shape:
                    raise ValueError(
                        f"{self.name}'s input has a shape unknown at trace "
                        f"time: {shape}."
                    )
                calls.append(PCall(
                    self, shape, keras.backend.standardize_dtype(inputs.dtype)
                ))
            depth[0] += watched
            try:
                return original(self, *args, **kwargs)
            finally:
                depth[0] -= watched

        return __call__

    local = images[: images.shape[0] // strategy.num_replicas_in_sync]
    with contextlib.ExitStack() as stack:
        for cls in {type(network) for network in networks}:
            stack.enter_context(
                mock.patch.object(cls, "__call__", recording(cls.__call__))
            )
        tf.function(
            lambda x: strategy.run(
                lambda y: pretrainer(y, training=True), args=(x,)
            )
        ).get_concrete_function(local)
    return calls


def _on_clone(network, original, clone):
    # `network`, a functional model from P's input to outputs of P's layers
    # (P's feature map), made anew from `clone`, a clone of P.
    if [id(x) for x in network.inputs] != [id(x) for x in original.inputs]:
        raise ValueError(
            f"{network.name} runs P's layers from another input than P's; "
            "the benchmark cannot rebuild it on a copy of P."
        )
    outputs = [
        clone.get_layer(output._keras_history.operation.name).output
        for output in network.outputs
    ]
    return keras.Model(
        clone.inputs, outputs[0] if len(outputs) == 1 else outputs,
        name=network.name,
    )


def build_backbone(args, strategy, pretrainer, calls, optimizer):
    """The `BackboneStep` of `pretrainer` for its P calls `calls`: a clone
    of its P (same architecture, width, stem, dtype policy; fresh weights),
    the networks of `calls` rebuilt on it, compiled as the method."""
    original = pretrainer.patch_network
    with strategy.scope():
        network = keras.models.clone_model(original)
        copies = {id(original): network}
        for call in calls:
            if id(call.network) not in copies:
                copies[id(call.network)] = _on_clone(
                    call.network, original, network
                )
        backbone = BackboneStep(
            network, [copies[id(call.network)] for call in calls],
            name="backbone",
        )
        compile_step(backbone, args, optimizer)
    return backbone


def backbone_inputs(calls, num_replicas, rng):
    """Random tensors in [0, 1) of the global shapes and the dtypes of
    `calls`: one per call (a tensor for one, a tuple for several)."""
    tensors = []
    for call in calls:
        shape = (call.shape[0] * num_replicas, *call.shape[1:])
        tensor = tf.constant(rng.uniform(size=shape).astype("float32"))
        tensors.append(tf.cast(tensor, call.dtype))
    return tensors[0] if len(tensors) == 1 else tuple(tensors)


def _einsum_flops(op):
    """FLOPs of a two-operand `Einsum`: 2 * the product of all index sizes.

    Every output element sums over the contracted indices, one multiply and
    one add each. TensorFlow has no count for `Einsum` (Keras' attention
    and `distractor_logits` use it).
    """
    operands, _ = op.get_attr("equation").decode().split("->")
    sizes = {}
    for labels, tensor in zip(operands.split(","), op.inputs):
        shape = tensor.shape.as_list()
        if "..." in labels:
            head, tail = labels.split("...")
            extra = len(shape) - len(head) - len(tail)
            labels = [*head, *(f"...{i}" for i in range(extra)), *tail]
        for label, size in zip(labels, shape):
            sizes[label] = max(sizes.get(label, 1), size)
    return 2 * math.prod(sizes.values())


def _batch_matmul_flops(op):
    """FLOPs of `BatchMatMul*`: 2 * k * the output's size.

    TensorFlow's own count reads the contracted size `k` from the
    attribute `transpose_a`, which these ops do not have (theirs is
    `adj_x`): it is wrong for the gradients of attention's einsums.
    """
    shape = op.inputs[0].shape
    k = shape[-2] if op.get_attr("adj_x") else shape[-1]
    return 2 * k * op.outputs[0].shape.num_elements()


FLOP_COUNTS = {
    "Einsum": _einsum_flops,
    "BatchMatMul": _batch_matmul_flops,
    "BatchMatMulV2": _batch_matmul_flops,
    "BatchMatMulV3": _batch_matmul_flops,
}


def count_flops(function, *args):
    """FLOPs of `tf.function(function)` traced on `args`.

    Sums TensorFlow's per-op FLOP statistics (those `tf.compat.v1.profiler`
    reports with `float_operation()`) over the traced graph, with
    `FLOP_COUNTS` for the ops it gets wrong or lacks. Ops without a count
    (gathers, casts, reshapes) add nothing.
    """
    graph = tf.function(function).get_concrete_function(*args).graph
    total = 0
    for op in graph.get_operations():
        if op.type in FLOP_COUNTS:
            total += FLOP_COUNTS[op.type](op)
            continue
        try:
            stats = tf_ops.get_stats_for_node_def(graph, op.node_def, "flops")
        except ValueError:  # A shape unknown at trace time.
            continue
        total += stats.value or 0
    return int(total)


def train_step_flops(model, batch, strategy):
    """FLOPs of one `model.train_step` on the global `batch` (a tensor or a
    tuple of them).

    Each replica's step is traced on its share of the batch, so the count
    is the work of the whole global batch.
    """
    replicas = strategy.num_replicas_in_sync
    local = tf.nest.map_structure(
        lambda x: x[: x.shape[0] // replicas], batch
    )
    return count_flops(
        lambda x: strategy.run(model.train_step, args=((x,),)), local
    )


class PeakMemory:
    """Peak memory of the steps: per step on a GPU, else the process RSS."""

    def __init__(self):
        gpus = tf.config.list_logical_devices("GPU")
        self.device = gpus[0].name.replace("/device:", "") if gpus else None
        self.kind = (
            f"{self.device} allocator peak during that step's warm-up"
            if self.device
            else "process peak RSS (getrusage ru_maxrss) after warm-up, "
            "cumulative"
        )

    def start(self):
        if self.device:
            tf.config.experimental.reset_memory_stats(self.device)

    def peak_mib(self):
        if self.device:
            info = tf.config.experimental.get_memory_info(self.device)
            return info["peak"] / 2**20
        # Linux reports kibibytes.
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def compile_step(model, args, optimizer):
    """Compiles `model` with `optimizer` (`DEFAULT_OPTIMIZER`'s keys) and
    the flags' `jit_compile` and `run_eagerly`, and builds the optimizer's
    variables."""
    model.compile(
        optimizer=make_optimizer(
            optimizer["name"], optimizer["learning_rate"],
            optimizer["weight_decay"],
        ),
        jit_compile={"auto": "auto", "true": True, "false": False}[
            args.jit_compile
        ],
        run_eagerly=args.run_eagerly,
    )
    # As `Pretrainer.compile` does: the optimizer's variables now, not in
    # the first traced step (which would then be traced twice).
    build_optimizer_variables(model)


def build_method(args, name, strategy):
    """The method's pretrainer, compiled, and what it was built with.

    Returns:
        `(pretrainer, optimizer, arguments)`: the optimizer of both steps
        (`DEFAULT_OPTIMIZER`'s keys) and the method's own arguments.
    """
    optimizer = DEFAULT_OPTIMIZER
    arguments = {}
    with strategy.scope():
        keras.utils.set_random_seed(0)
        if args.zoo:
            zoo = zoo_module()
            settings = zoo.settings_of(name, args.zoo_args)
            pretrainer = zoo.build(args.zoo_args, name, settings)
            arguments = settings["config"]
            optimizer = dict(
                name=settings["optimizer"],
                learning_rate=settings["learning_rate"],
                weight_decay=args.zoo_args.weight_decay,
            )
        elif name == "selfie":
            pretrainer = keras_selfie.SelfiePretrainer(
                image_size=args.image_size,
                patch_size=args.patch_size,
                num_decoder_patches=args.num_decoder_patches,
                stem=args.stem,
                width=args.width,
                num_layers=args.num_layers,
                num_heads=args.num_heads,
                intermediate_dim=args.intermediate_dim,
                query=args.query,
                seed=0,
            )
        else:
            zoo = zoo_module()
            arguments = zoo.settings_of(name, zoo.parse_args([]))["config"]
            pretrainer = methods.get(name)(
                image_size=args.image_size, stem=args.stem, width=args.width,
                seed=0, **arguments,
            )
        compile_step(pretrainer, args, optimizer)
    return pretrainer, optimizer, arguments


def label_of(pretrainer):
    """`SelfiePretrainer` -> `Selfie`, `RotationPretrainer` -> `Rotation`."""
    return type(pretrainer).__name__.removesuffix("Pretrainer")


def describe_p_inputs(p_inputs, batch_size, per_image=False):
    """What P ran on: `512 patches of 8x8 through P`, `64 patches of 32x32
    through patch_network_feature_map (P's layers)`; or per image, `16 x
    8x8`, `1 x 32x32 (patch_network_feature_map)`.

    Args:
        p_inputs: a result's `"p_inputs"`.
        batch_size: the images of the step.
        per_image: whether to count per image of the batch.
    """
    parts = []
    for p_input in p_inputs:
        count = p_input["shape"][0]
        size = "x".join(str(n) for n in p_input["shape"][1:3])
        network = "" if p_input["is_p"] else p_input["network"]
        if per_image:
            part = f"{count / batch_size:g} x {size}"
            part += f" ({network})" * bool(network)
        else:
            part = f"{count:,} patches of {size} through "
            part += f"{network} (P's layers)" if network else "P"
        parts.append(part)
    return " + ".join(parts)


def verdict(ratio):
    return "meets" if ratio <= GOAL else "misses"


def measure(args, batch_size, strategy, pretrainer, backbone_for, memory):
    """Times the method's step and its backbone's at `batch_size`.

    Args:
        backbone_for: a function from the recorded P calls (`PCall`s) to
            the `BackboneStep` that makes them.
    """
    name = methods.name_of(pretrainer)
    rng = np.random.default_rng(0)
    height, width = pretrainer.image_size
    images = tf.constant(
        rng.integers(
            0, 256, (batch_size, height, width, pretrainer.num_channels),
            dtype="uint8",
        )
    )
    replicas = strategy.num_replicas_in_sync
    calls = record_p_inputs(pretrainer, images, strategy)
    # What P ran on, globally (names only: a result keeps no model alive).
    p_inputs = [
        {
            "network": call.network.name,
            "is_p": call.network is pretrainer.patch_network,
            "shape": (call.shape[0] * replicas, *call.shape[1:]),
            "dtype": call.dtype,
        }
        for call in calls
    ]
    backbone = backbone_for(calls)
    inputs = backbone_inputs(calls, replicas, rng)
    steps = {
        name: lambda: pretrainer.train_on_batch(images),
        "backbone": lambda: backbone.train_on_batch(inputs),
    }
    peaks = {}
    for step_name in ("backbone", name):
        memory.start()
        for _ in range(args.warmup):
            steps[step_name]()
        peaks[step_name] = memory.peak_mib()

    def window(step):
        def run():
            for _ in range(args.steps):
                step()
        return run

    times, cpu_times = interleaved_times(
        {step_name: window(step) for step_name, step in steps.items()},
        args.windows,
    )
    images_per_window = args.steps * batch_size
    rates = {
        step_name: [images_per_window / t for t in seconds]
        for step_name, seconds in times.items()
    }
    ratios = [m / b for m, b in zip(times[name], times["backbone"])]
    cpu_ratios = [
        m / b for m, b in zip(cpu_times[name], cpu_times["backbone"])
    ]
    result = {
        "method": name,
        "label": label_of(pretrainer),
        "batch_size": batch_size,
        "p_inputs": p_inputs,
        f"{name}_images_per_s": statistics.median(rates[name]),
        "backbone_images_per_s": statistics.median(rates["backbone"]),
        "rates": rates,
        "R": statistics.median(ratios),
        "ratios": ratios,
        "R_cpu": statistics.median(cpu_ratios),
        "cpu_ms_per_image": {
            step_name: 1000 * statistics.median(seconds) / images_per_window
            for step_name, seconds in cpu_times.items()
        },
        "peak_mib": peaks,
    }
    if not args.no_flops:
        result[f"flops_{name}"] = train_step_flops(
            pretrainer, images, strategy
        )
        result["flops_backbone"] = train_step_flops(
            backbone, inputs, strategy
        )
        result["F"] = result[f"flops_{name}"] / result["flops_backbone"]
    return result


def report(result, memory):
    name, label = result["method"], result["label"]
    b = result["batch_size"]
    fmt = lambda values: ", ".join(f"{v:,.1f}" for v in values)  # noqa: E731
    print(f"Batch {b} images = {describe_p_inputs(result['p_inputs'], b)}:")
    print(f"  {label + ' step:':14} "
          f"{result[f'{name}_images_per_s']:8,.1f} images/s "
          f"(windows: {fmt(result['rates'][name])})")
    print(f"  backbone step: {result['backbone_images_per_s']:8,.1f} images/s "
          f"(windows: {fmt(result['rates']['backbone'])})")
    print(f"  R = t_{name} / t_backbone = {result['R']:.3f} (rounds: "
          f"{', '.join(f'{r:.3f}' for r in result['ratios'])})")
    cpu = result["cpu_ms_per_image"]
    print(f"  R_cpu = the same in process CPU time = {result['R_cpu']:.3f} "
          f"({cpu[name]:,.1f} / {cpu['backbone']:,.1f} CPU ms per image)")
    if "F" in result:
        print(f"  F = flops_{name} / flops_backbone = {result['F']:.3f} "
              f"({result[f'flops_{name}'] / 1e9:,.2f} / "
              f"{result['flops_backbone'] / 1e9:,.2f} GFLOP per step)")
        ratio = result["R"] / result["F"]
        print(f"  R / F = {ratio:.3f} (goal <= {GOAL}: "
              f"{verdict(ratio)} it)")
    print(f"  peak memory ({memory.kind}): backbone "
          f"{result['peak_mib']['backbone']:,.0f} MiB, {label} "
          f"{result['peak_mib'][name]:,.0f} MiB")


def summary(results):
    """The results as one markdown table, a row per method and batch."""
    lines = [
        "| method | batch | P's inputs per image | images/s | backbone "
        f"images/s | R | R_cpu | F | R / F | verdict (R <= {GOAL} F) | "
        "peak MiB backbone / method |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for result in results:
        name, b = result["method"], result["batch_size"]
        if "F" in result:
            ratio = result["R"] / result["F"]
            flops = (f"{result['F']:.3f} | {ratio:.3f} | "
                     f"**{verdict(ratio)}**")
        else:
            flops = "- | - | -"
        lines.append(
            f"| {name} | {b} | "
            f"{describe_p_inputs(result['p_inputs'], b, per_image=True)} | "
            f"{result[f'{name}_images_per_s']:,.1f} | "
            f"{result['backbone_images_per_s']:,.1f} | {result['R']:.3f} | "
            f"{result['R_cpu']:.3f} | {flops} | "
            f"{result['peak_mib']['backbone']:,.0f} / "
            f"{result['peak_mib'][name]:,.0f} |"
        )
    return "\n".join(lines)


def describe_method(pretrainer, arguments, args):
    """The header line of a method: its network and parameters."""
    height, width = pretrainer.image_size
    if isinstance(pretrainer, keras_selfie.SelfiePretrainer):
        p = pretrainer.patch_size
        network = (
            f"Selfie: {height}x{width} images, {p}x{p} patches "
            f"(N={pretrainer.num_patches}, "
            f"M={pretrainer.num_decoder_patches}), width {pretrainer.width} "
            f"(d={pretrainer.feature_dim}), {pretrainer.num_layers} "
            f"attention layers, {pretrainer.num_heads} heads, intermediate "
            f"{pretrainer.intermediate_dim}"
        )
    else:
        given = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
        network = (
            f"{label_of(pretrainer)} ({methods.name_of(pretrainer)}): "
            f"{height}x{width} images, {pretrainer.stem} stem, width "
            f"{pretrainer.width} (d={pretrainer.feature_dim}); arguments: "
            f"{given or 'defaults'}"
        )
    if args.zoo:
        network += (
            f"; built as examples/compare_methods.py --preset {args.zoo}"
        )
    return (
        f"{network}; {pretrainer.count_params():,} parameters (P alone: "
        f"{pretrainer.patch_network.count_params():,})"
    )


def describe_optimizer(optimizer):
    if optimizer == DEFAULT_OPTIMIZER:
        return "SGD"
    return (
        f"{optimizer['name']} at {optimizer['learning_rate']:g}, weight "
        f"decay {optimizer['weight_decay']:g}"
    )


def main(argv=None):
    args = parse_args(argv)
    print(machine_line())
    previous_policy = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(args.precision)
    try:
        strategy = get_strategy(args.strategy)
        memory = PeakMemory()
        results = []
        for name in args.methods:
            pretrainer, optimizer, arguments = build_method(
                args, name, strategy
            )
            print(describe_method(pretrainer, arguments, args))
            print(f"precision {args.precision}, "
                  f"jit_compile={args.jit_compile}, strategy {args.strategy} "
                  f"({strategy.num_replicas_in_sync} replica(s)); "
                  f"{describe_optimizer(optimizer)}; {args.warmup} warm-up "
                  f"steps, {args.windows} interleaved windows of "
                  f"{args.steps} steps\n")
            backbones = {}

            def backbone_for(calls):
                # One backbone step per set of P's networks (the same at
                # every batch size).
                key = tuple(id(call.network) for call in calls)
                if key not in backbones:
                    backbones[key] = build_backbone(
                        args, strategy, pretrainer, calls, optimizer
                    )
                return backbones[key]

            for batch_size in args.batch_sizes:
                result = measure(
                    args, batch_size, strategy, pretrainer, backbone_for,
                    memory,
                )
                report(result, memory)
                results.append(result)
                sys.stdout.flush()
            if len(args.methods) > 1:
                print()
        if len(args.methods) > 1:
            print(summary(results))
        return results
    finally:
        keras.mixed_precision.set_dtype_policy(previous_policy)


if __name__ == "__main__":
    main()
