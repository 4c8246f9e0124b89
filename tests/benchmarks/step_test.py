"""Tests of `benchmarks/step.py`: its FLOP count and a smoke run.

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

from conftest import REPO
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
    built = []  # The two models main() measures: (selfie, backbone).
    original_build_steps = step.build_steps

    def build_steps(*args):
        built.extend(original_build_steps(*args))
        return built

    monkeypatch.setattr(step, "build_steps", build_steps)
    warmup, windows, steps = 1, 3, 1
    results = step.main(
        [
            *TINY_FLAGS,
            "--batch-sizes", "2",
            "--windows", str(windows),
            "--steps", str(steps),
            "--warmup", str(warmup),
            "--precision", "mixed_bfloat16",
            "--run-eagerly",
        ]
    )
    out = capsys.readouterr().out
    (result,) = results
    assert result["batch_size"] == 2
    # Both models were built under the requested policy, which main() then
    # put back.
    selfie, backbone = built
    for model in built:
        assert model.dtype_policy.name == "mixed_bfloat16"
    assert keras.mixed_precision.dtype_policy().name == "float32"
    # Each model made exactly the steps the rates are computed from: the
    # warm-up, then `steps` per timed window (the FLOP count only traces).
    for model in built:
        assert int(model.optimizer.iterations.numpy()) == (
            warmup + windows * steps
        )
    # A round's ratio t_selfie / t_backbone is the inverse ratio of its
    # rates (same images per window); R and the rates are the medians.
    rates = result["rates"]
    assert len(result["ratios"]) == len(rates["selfie"]) == windows
    np.testing.assert_allclose(
        result["ratios"],
        np.divide(rates["backbone"], rates["selfie"]),
        rtol=1e-9,
    )
    assert result["R"] == statistics.median(result["ratios"])
    assert result["selfie_images_per_s"] == statistics.median(rates["selfie"])
    assert result["backbone_images_per_s"] == statistics.median(
        rates["backbone"]
    )
    # The printed figures are the returned ones.
    printed = re.search(
        r"R = t_selfie / t_backbone = ([\d.]+) \(rounds: ([\d., ]+)\)", out
    )
    assert float(printed[1]) == pytest.approx(result["R"], abs=5e-4)
    np.testing.assert_allclose(
        [float(r) for r in printed[2].split(", ")], result["ratios"],
        atol=5e-4,
    )
    printed_f = re.search(r"F = flops_selfie / flops_backbone = ([\d.]+)", out)
    assert result["F"] == result["flops_selfie"] / result["flops_backbone"]
    assert float(printed_f[1]) == pytest.approx(result["F"], abs=5e-4)
    # Selfie's step runs P on the same 32 patches and more besides: A, the
    # loss and the larger optimizer update.
    assert result["F"] > 1.0
    assert (
        f"{selfie.count_params():,} parameters (P alone: "
        f"{backbone.network.count_params():,})"
    ) in out
