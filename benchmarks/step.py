"""What does Selfie cost beyond running the patch network P?

For each `--batch-sizes` value, builds in one process

(a) the `SelfiePretrainer` training step on a batch of `B` images, and
(b) the training step of the patch network P alone (the same architecture,
    width and precision) on the same `B * N` patches, with a trivial loss
    (the mean square of the features),

warms both up, then times them in interleaved windows (a, b, a, b, ...:
both see the same load if other processes share the CPU) and prints each
one's images/s (median over windows) and

    R = t_selfie / t_backbone   (median of the per-round ratios; also in
                                 process CPU time, R_cpu, steadier on a
                                 shared machine),
    F = flops_selfie / flops_backbone,

where the FLOPs are the sum of TensorFlow's per-op FLOP statistics (the
ones `tf.compat.v1.profiler` reports with `float_operation()`) over each
model's whole `train_step` (forward, backward, optimizer update, metrics)
traced as a graph, with two corrections: `Einsum`, which TensorFlow does
not count, is `2 * prod(all index sizes)`, and `BatchMatMul`, whose count
ignores `adj_x` (so the gradients of attention count ~100x too much), is
`2 * k * output size`. `R <= 1.1 * F` means that the parts of
Selfie around P (patch extraction, split, gathers, attention pooling, loss)
take no more time than their share of the arithmetic. Also prints the peak
memory: the GPU allocator's peak per step where there is a GPU, else the
process's peak resident set size (`getrusage`) after each warm-up.

    python benchmarks/step.py --batch-sizes 32 128              # CIFAR
    python benchmarks/step.py --precision mixed_bfloat16
    python benchmarks/step.py --width 0.25 --windows 3 --steps 2
"""

import argparse
import math
import os
import resource
import statistics
import sys

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
from keras_selfie.models.resnet import patch_network  # noqa: E402
from keras_selfie.utils.distribution import STRATEGIES  # noqa: E402
from keras_selfie.utils.distribution import get_strategy  # noqa: E402
from timing import interleaved_times  # noqa: E402
from timing import machine_line  # noqa: E402

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32],
                        help="images per global batch; each is measured "
                        "(default: 32)")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--patch-size", type=int, default=8)
    parser.add_argument("--num-decoder-patches", type=int, default=None,
                        help="M (default: N // 4, i.e. 4 of 16)")
    parser.add_argument("--stem", choices=keras_selfie.models.resnet.STEMS,
                        default="cifar")
    parser.add_argument("--width", type=float, default=1.0,
                        help="width multiplier of P (default: 1.0, d=1024)")
    parser.add_argument("--num-layers", type=int, default=3,
                        help="Transformer layers in A (default: 3)")
    parser.add_argument("--num-heads", type=int, default=32)
    parser.add_argument("--intermediate-dim", type=int, default=640)
    parser.add_argument("--query", choices=keras_selfie.models.selfie_pretrainer.QUERIES,
                        default="context",
                        help="SelfiePretrainer's query (and with it the "
                        "default distractors and scores; 'paper' is "
                        "PAPER.md's formulation)")
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
    return parser.parse_args(argv)


class BackboneStep(keras.Model):
    """P alone, trained on patches with a trivial loss (mean squared feature).

    Stands for the part of Selfie's step that cannot be avoided: P's
    forward and backward pass over all `B * N` patches and its update.
    """

    def __init__(self, network, **kwargs):
        super().__init__(**kwargs)
        self.network = network

    def call(self, patches, training=None):
        return self.network(patches, training=training)

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        return ops.mean(ops.square(ops.cast(y_pred, "float32")))


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
    """FLOPs of one `model.train_step` on the global `batch`.

    Each replica's step is traced on its share of the batch, so the count
    is the work of the whole global batch.
    """
    local = batch[: batch.shape[0] // strategy.num_replicas_in_sync]
    return count_flops(
        lambda x: strategy.run(model.train_step, args=(x,)), local
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


def build_steps(args, strategy):
    optimizer = lambda: keras_selfie.optimizers.make_optimizer(  # noqa: E731
        "sgd", 0.1
    )
    jit_compile = {"auto": "auto", "true": True, "false": False}[
        args.jit_compile
    ]
    with strategy.scope():
        keras.utils.set_random_seed(0)
        selfie = keras_selfie.SelfiePretrainer(
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
        compile_args = dict(jit_compile=jit_compile,
                            run_eagerly=args.run_eagerly)
        selfie.compile(optimizer=optimizer(), **compile_args)
        backbone = BackboneStep(
            patch_network(stem=args.stem, width=args.width), name="backbone"
        )
        backbone.compile(optimizer=optimizer(), **compile_args)
    return selfie, backbone


def measure(args, batch_size, strategy, selfie, backbone, memory):
    rng = np.random.default_rng(0)
    images = tf.constant(
        rng.integers(0, 256, (batch_size, args.image_size, args.image_size, 3),
                     dtype="uint8")
    )
    num_patches = selfie.num_patches
    p = selfie.patch_size
    patches = tf.constant(
        rng.uniform(size=(batch_size * num_patches, p, p, 3)).astype("float32")
    )
    steps = {
        "selfie": lambda: selfie.train_on_batch(images),
        "backbone": lambda: backbone.train_on_batch(patches),
    }
    peaks = {}
    for name in ("backbone", "selfie"):
        memory.start()
        for _ in range(args.warmup):
            steps[name]()
        peaks[name] = memory.peak_mib()

    def window(step):
        def run():
            for _ in range(args.steps):
                step()
        return run

    times, cpu_times = interleaved_times(
        {name: window(step) for name, step in steps.items()}, args.windows
    )
    images_per_window = args.steps * batch_size
    rates = {
        name: [images_per_window / t for t in seconds]
        for name, seconds in times.items()
    }
    ratios = [s / b for s, b in zip(times["selfie"], times["backbone"])]
    cpu_ratios = [
        s / b for s, b in zip(cpu_times["selfie"], cpu_times["backbone"])
    ]
    result = {
        "batch_size": batch_size,
        "selfie_images_per_s": statistics.median(rates["selfie"]),
        "backbone_images_per_s": statistics.median(rates["backbone"]),
        "rates": rates,
        "R": statistics.median(ratios),
        "ratios": ratios,
        "R_cpu": statistics.median(cpu_ratios),
        "cpu_ms_per_image": {
            name: 1000 * statistics.median(seconds) / images_per_window
            for name, seconds in cpu_times.items()
        },
        "peak_mib": peaks,
    }
    if not args.no_flops:
        result["flops_selfie"] = train_step_flops(selfie, images, strategy)
        result["flops_backbone"] = train_step_flops(
            backbone, patches, strategy
        )
        result["F"] = result["flops_selfie"] / result["flops_backbone"]
    return result


def report(result, memory, num_patches):
    b = result["batch_size"]
    fmt = lambda values: ", ".join(f"{v:,.1f}" for v in values)  # noqa: E731
    print(f"Batch {b} images = {b * num_patches} patches through P:")
    print(f"  Selfie step:   {result['selfie_images_per_s']:8,.1f} images/s "
          f"(windows: {fmt(result['rates']['selfie'])})")
    print(f"  backbone step: {result['backbone_images_per_s']:8,.1f} images/s "
          f"(windows: {fmt(result['rates']['backbone'])})")
    print(f"  R = t_selfie / t_backbone = {result['R']:.3f} (rounds: "
          f"{', '.join(f'{r:.3f}' for r in result['ratios'])})")
    cpu = result["cpu_ms_per_image"]
    print(f"  R_cpu = the same in process CPU time = {result['R_cpu']:.3f} "
          f"({cpu['selfie']:,.1f} / {cpu['backbone']:,.1f} CPU ms per image)")
    if "F" in result:
        print(f"  F = flops_selfie / flops_backbone = {result['F']:.3f} "
              f"({result['flops_selfie'] / 1e9:,.2f} / "
              f"{result['flops_backbone'] / 1e9:,.2f} GFLOP per step)")
        ratio = result["R"] / result["F"]
        print(f"  R / F = {ratio:.3f} (goal <= 1.1: "
              f"{'meets' if ratio <= 1.1 else 'misses'} it)")
    print(f"  peak memory ({memory.kind}): backbone "
          f"{result['peak_mib']['backbone']:,.0f} MiB, Selfie "
          f"{result['peak_mib']['selfie']:,.0f} MiB")


def main(argv=None):
    args = parse_args(argv)
    print(machine_line())
    previous_policy = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(args.precision)
    try:
        strategy = get_strategy(args.strategy)
        selfie, backbone = build_steps(args, strategy)
        print(f"Selfie: {args.image_size}x{args.image_size} images, "
              f"{args.patch_size}x{args.patch_size} patches (N="
              f"{selfie.num_patches}, M={selfie.num_decoder_patches}), "
              f"width {args.width} (d={selfie.feature_dim}), "
              f"{args.num_layers} attention layers, {args.num_heads} heads, "
              f"intermediate {args.intermediate_dim}; "
              f"{selfie.count_params():,} parameters (P alone: "
              f"{backbone.network.count_params():,})")
        print(f"precision {args.precision}, jit_compile={args.jit_compile}, "
              f"strategy {args.strategy} ({strategy.num_replicas_in_sync} "
              f"replica(s)); SGD; {args.warmup} warm-up steps, "
              f"{args.windows} interleaved windows of {args.steps} steps\n")
        memory = PeakMemory()
        results = []
        for batch_size in args.batch_sizes:
            result = measure(
                args, batch_size, strategy, selfie, backbone, memory
            )
            report(result, memory, selfie.num_patches)
            results.append(result)
            sys.stdout.flush()
        return results
    finally:
        keras.mixed_precision.set_dtype_policy(previous_policy)


if __name__ == "__main__":
    main()
