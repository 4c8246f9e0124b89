"""Tests of `benchmarks/step.py`: its FLOP count, what it records each
method's step feeds P, the backbone step it builds from that, and smoke
runs.

No speed is asserted (that lives in the benchmark and docs/PERFORMANCE.md),
only that the reported figures are the ones the measured steps give.
"""

import re
import statistics
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_selfie
from conftest import REPO
from conftest import TINY
from conftest import TINY_FLAGS
from conftest import load_example


@pytest.fixture(scope="module")
def step():
    # The benchmarks import their shared helpers (`timing`) by name.
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        yield load_example("step", folder="benchmarks")
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


class TestFlops:
    def test_dense_layer(self, step):
        # x @ W: 2 * batch * in * out (a multiply and an add per term);
        # + bias: batch * out.
        dense = keras.layers.Dense(7)
        x = tf.zeros((5, 3))
        dense.build(x.shape)
        assert step.count_flops(dense, x) == 2 * 5 * 3 * 7 + 5 * 7

    @pytest.mark.parametrize("adjoint", [False, True])
    def test_batch_matmul(self, step, adjoint):
        # (3, 4, 5) @ (3, 5, 6), or the same with a = (3, 5, 4) transposed.
        a = tf.zeros((3, 5, 4) if adjoint else (3, 4, 5))
        b = tf.zeros((3, 5, 6))
        flops = step.count_flops(
            lambda a, b: tf.matmul(a, b, adjoint_a=adjoint), a, b
        )
        assert flops == 2 * 3 * 4 * 5 * 6

    @pytest.mark.parametrize(
        "equation, shapes, sizes",
        [
            ("bjd,bkd->bjk", [(2, 3, 8), (2, 4, 8)], (2, 3, 4, 8)),
            ("abc,cde->abde", [(2, 5, 6), (6, 4, 3)], (2, 5, 6, 4, 3)),
            ("...d,de->...e", [(2, 5, 6), (6, 4)], (2, 5, 6, 4)),
        ],
    )
    def test_einsum(self, step, equation, shapes, sizes):
        operands = [tf.zeros(shape) for shape in shapes]
        flops = step.count_flops(
            lambda a, b: tf.einsum(equation, a, b), *operands
        )
        assert flops == 2 * np.prod(sizes)


def test_smoke_run_reports_its_own_measurements(step, capsys, monkeypatch):
    # The models main() measures: method -> (pretrainer, backbone step).
    built = {}
    original_build_method = step.build_method
    original_build_backbone = step.build_backbone

    def build_method(args, name, strategy):
        made = original_build_method(args, name, strategy)
        built[name] = [made[0]]
        return made

    def build_backbone(args, strategy, pretrainer, calls, optimizer):
        backbone = original_build_backbone(
            args, strategy, pretrainer, calls, optimizer
        )
        built[step.methods.name_of(pretrainer)].append(backbone)
        return backbone

    monkeypatch.setattr(step, "build_method", build_method)
    monkeypatch.setattr(step, "build_backbone", build_backbone)
    warmup, windows, steps = 1, 3, 1
    results = step.main(
        [
            *TINY_FLAGS,
            "--methods", "selfie", "rotation",
            "--batch-sizes", "2",
            "--windows", str(windows),
            "--steps", str(steps),
            "--warmup", str(warmup),
            "--precision", "mixed_bfloat16",
            "--run-eagerly",
        ]
    )
    out = capsys.readouterr().out
    assert [r["method"] for r in results] == ["selfie", "rotation"]
    assert list(built) == ["selfie", "rotation"]
    # What P ran on, recorded in bfloat16: Selfie's 2 * 16 patches, the 4
    # rotations of the 2 images.
    assert [r["p_inputs"] for r in results] == [
        [{"network": "patch_network", "is_p": True, "shape": (32, 8, 8, 3),
          "dtype": "bfloat16"}],
        [{"network": "patch_network", "is_p": True,
          "shape": (8, 32, 32, 3), "dtype": "bfloat16"}],
    ]
    assert "Batch 2 images = 32 patches of 8x8 through P:" in out
    assert "Batch 2 images = 8 patches of 32x32 through P:" in out
    # Both models were built under the requested policy, which main() then
    # put back.
    for model in sum(built.values(), []):
        assert model.dtype_policy.name == "mixed_bfloat16"
    assert keras.mixed_precision.dtype_policy().name == "float32"
    for (name, (pretrainer, backbone)), result in zip(built.items(), results):
        assert result["batch_size"] == 2
        # Each model made exactly the steps the rates are computed from:
        # the warm-up, then `steps` per timed window (the FLOP count only
        # traces, and so does the recording of P's inputs).
        for model in (pretrainer, backbone):
            assert int(model.optimizer.iterations.numpy()) == (
                warmup + windows * steps
            )
        # A round's ratio t_method / t_backbone is the inverse ratio of its
        # rates (same images per window); R and the rates are the medians.
        rates = result["rates"]
        assert len(result["ratios"]) == len(rates[name]) == windows
        np.testing.assert_allclose(
            result["ratios"],
            np.divide(rates["backbone"], rates[name]),
            rtol=1e-9,
        )
        assert result["R"] == statistics.median(result["ratios"])
        assert result[f"{name}_images_per_s"] == statistics.median(
            rates[name]
        )
        assert result["backbone_images_per_s"] == statistics.median(
            rates["backbone"]
        )
        # The printed figures are the returned ones.
        printed = re.search(
            rf"R = t_{name} / t_backbone = ([\d.]+) \(rounds: ([\d., ]+)\)",
            out,
        )
        assert float(printed[1]) == pytest.approx(result["R"], abs=5e-4)
        np.testing.assert_allclose(
            [float(r) for r in printed[2].split(", ")], result["ratios"],
            atol=5e-4,
        )
        printed_f = re.search(
            rf"F = flops_{name} / flops_backbone = ([\d.]+)", out
        )
        assert result["F"] == (
            result[f"flops_{name}"] / result["flops_backbone"]
        )
        assert float(printed_f[1]) == pytest.approx(result["F"], abs=5e-4)
        # The method's step runs P on the same inputs and more besides
        # (Selfie: A, the loss and the larger optimizer update).
        assert result["F"] > 1.0
        assert (
            f"{pretrainer.count_params():,} parameters (P alone: "
            f"{backbone.network.count_params():,})"
        ) in out
        # The summary's row says the same.
        ratio = result["R"] / result["F"]
        assert (
            f"| {name} | 2 | {16 if name == 'selfie' else 4} x "
            f"{8 if name == 'selfie' else 32}x"
            f"{8 if name == 'selfie' else 32} | "
            f"{result[f'{name}_images_per_s']:,.1f} | "
            f"{result['backbone_images_per_s']:,.1f} | {result['R']:.3f} | "
            f"{result['R_cpu']:.3f} | {result['F']:.3f} | {ratio:.3f} | "
            f"**{'meets' if ratio <= 1.1 else 'misses'}** |"
        ) in out


def test_backbone_step_runs_every_p_call_on_one_clone(step):
    # Selfie with the masked-image context view runs P's feature map on the
    # blanked images, then P on the decoder patches: two calls, one P. Eager
    # steps: one step does not repay tracing it.
    args = step.parse_args(
        [*TINY_FLAGS, "--batch-sizes", "2", "--run-eagerly"]
    )
    strategy = tf.distribute.get_strategy()
    pretrainer = keras_selfie.SelfiePretrainer(
        **{k: TINY[k] for k in TINY}, context_view="masked_image", seed=0
    )
    step.compile_step(pretrainer, args, step.DEFAULT_OPTIMIZER)
    images = tf.zeros((2, 32, 32, 3), "uint8")
    calls = step.record_p_inputs(pretrainer, images, strategy)
    assert [(c.network, c.shape) for c in calls] == [
        (pretrainer.feature_map_network, (2, 32, 32, 3)),
        (pretrainer.patch_network, (2 * 4, 8, 8, 3)),
    ]
    backbone = step.build_backbone(
        args, strategy, pretrainer, calls, step.DEFAULT_OPTIMIZER
    )
    feature_map, network = backbone.networks
    assert network is backbone.network
    assert feature_map.output_shape == (None, None, None, 128)
    # One set of P's weights, shared by both calls, as in the method.
    assert {id(w) for w in feature_map.weights} <= {
        id(w) for w in network.weights
    }
    assert len(backbone.trainable_weights) == len(network.trainable_weights)
    inputs = step.backbone_inputs(calls, 1, np.random.default_rng(0))
    assert [x.shape for x in inputs] == [(2, 32, 32, 3), (8, 8, 8, 3)]
    before = [w.numpy() for w in network.trainable_weights]
    backbone.train_on_batch(inputs)
    assert all(
        not np.array_equal(b, w.numpy())
        for b, w in zip(before, network.trainable_weights)
        if "kernel" in w.path
    )


# Method -> what its step at the zoo's smoke settings feeds P, per image of
# the batch: (how many inputs, their side, whether through P's feature map
# rather than P). Written from each method's definition; the benchmark
# records it from the step instead.
SMOKE_P_INPUTS = {
    "selfie": (16, 8, False),  # the N = 16 patches of 8x8
    "rotation": (4, 32, False),  # the 4 rotations
    # all_neighbors: 8 pairs of a centre and a neighbour patch.
    "relative_patch_location": (16, 8, False),
    # classifier="batch": the image itself (the seed) and 2 copies.
    "exemplar": (3, 32, False),
    "jigsaw": (4, 13, False),  # grid_size=2: 4 tiles of 13x13
    "simclr": (2, 32, False),  # 2 views
    "context_encoder": (1, 32, True),
    "super_resolution": (1, 32, True),
    "colorization": (1, 32, True),
}
SMOKE_BATCH = 16  # exemplar's groups are 16 images of the batch


def test_every_method_has_an_expected_p_input():
    import keras_selfie

    assert sorted(SMOKE_P_INPUTS) == sorted(keras_selfie.methods.names())


@pytest.fixture(scope="module")
def recorded(step):
    """Method -> its zoo smoke pretrainer and what its step feeds P, made
    once for the tests of the recording and of the backbone step (which
    leave the pretrainer as it was)."""
    made = {}

    def recorded(method):
        if method not in made:
            args = step.parse_args(["--zoo", "smoke", "--method", method])
            assert args.batch_sizes == [SMOKE_BATCH]  # the zoo preset's
            strategy = tf.distribute.get_strategy()
            pretrainer, optimizer, _ = step.build_method(
                args, method, strategy
            )
            images = tf.zeros((SMOKE_BATCH, 32, 32, 3), "uint8")
            calls = step.record_p_inputs(pretrainer, images, strategy)
            made[method] = args, strategy, pretrainer, optimizer, calls
        return made[method]

    return recorded


@pytest.mark.parametrize("method", sorted(SMOKE_P_INPUTS))
def test_recorded_p_inputs_are_what_the_method_feeds_p(recorded, method):
    _, _, pretrainer, _, calls = recorded(method)
    per_image, side, through_feature_map = SMOKE_P_INPUTS[method]
    (call,) = calls
    assert call.shape == (per_image * SMOKE_BATCH, side, side, 3)
    assert call.dtype == "float32"
    if through_feature_map:
        assert call.network is pretrainer.feature_map
    else:
        assert call.network is pretrainer.patch_network


# One method whose step calls P, one that calls P's feature map: the
# backbone step is built from the recording the same way for every method.
@pytest.mark.parametrize("method", ["rotation", "colorization"])
def test_backbone_step_is_p_on_the_recorded_inputs(step, recorded, method):
    from keras_selfie.models.resnet import feature_map_network
    from keras_selfie.models.resnet import patch_network

    args, strategy, pretrainer, optimizer, calls = recorded(method)
    (call,) = calls
    through_feature_map = SMOKE_P_INPUTS[method][2]
    backbone = step.build_backbone(
        args, strategy, pretrainer, calls, optimizer
    )
    # A clone of P: the same layers and sizes, not the same weights.
    network = backbone.network
    assert network is not pretrainer.patch_network
    assert [layer.get_config() for layer in network.layers] == [
        layer.get_config() for layer in pretrainer.patch_network.layers
    ]
    assert not {id(w) for w in network.weights} & {
        id(w) for w in pretrainer.weights
    }
    (runs,) = backbone.networks
    assert (runs is network) == (not through_feature_map)
    assert len(backbone.trainable_weights) == len(network.trainable_weights)

    # It runs P built by hand on the recorded tensors: the same FLOPs (the
    # forward passes; the steps add the trivial loss and the update). F
    # itself (the whole steps' FLOPs, traced) is checked by the smoke run.
    rng = np.random.default_rng(0)
    inputs = step.backbone_inputs(calls, 1, rng)
    assert inputs.shape == call.shape
    by_hand = patch_network(stem="cifar", width=pretrainer.width)
    if through_feature_map:
        by_hand = feature_map_network(by_hand)
    forward = lambda model: lambda x: model(x, training=True)  # noqa: E731
    assert step.count_flops(forward(backbone), inputs) == step.count_flops(
        forward(by_hand), tf.zeros(call.shape)
    )


def test_p_inputs_are_recorded_once_per_replica_share(step):
    from conftest import two_cpu_strategy

    # Under a strategy each replica's step sees its share of the batch:
    # the recording is replica 0's (not one per replica), and the backbone
    # step gets the global batch of that.
    strategy = two_cpu_strategy()
    args = step.parse_args(["--zoo", "smoke", "--method", "rotation"])
    pretrainer, _, _ = step.build_method(args, "rotation", strategy)
    calls = step.record_p_inputs(
        pretrainer, tf.zeros((4, 32, 32, 3), "uint8"), strategy
    )
    assert [(c.network, c.shape) for c in calls] == [
        (pretrainer.patch_network, (4 * 2, 32, 32, 3))
    ]
    inputs = step.backbone_inputs(calls, 2, np.random.default_rng(0))
    assert inputs.shape == (4 * 4, 32, 32, 3)
