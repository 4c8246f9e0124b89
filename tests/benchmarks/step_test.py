"""Tests of `benchmarks/step.py`: its FLOP count and a smoke run.

No timing is asserted: speed lives in the benchmark and docs/PERFORMANCE.md.
"""

import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO
from conftest import TINY
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


def test_smoke_run_prints_r_and_f(step, capsys):
    results = step.main(
        [
            "--width", str(TINY["width"]),
            "--num-layers", str(TINY["num_layers"]),
            "--num-heads", str(TINY["num_heads"]),
            "--intermediate-dim", str(TINY["intermediate_dim"]),
            "--batch-sizes", "2",
            "--windows", "1",
            "--steps", "1",
            "--warmup", "1",
            "--run-eagerly",
        ]
    )
    out = capsys.readouterr().out
    assert "R = t_selfie / t_backbone" in out
    assert "F = flops_selfie / flops_backbone" in out
    (result,) = results
    assert result["batch_size"] == 2
    assert result["F"] == result["flops_selfie"] / result["flops_backbone"]
    # Selfie's step runs P on the same 32 patches and more besides: A, the
    # loss and the larger optimizer update.
    assert result["F"] > 1.0
    assert result["R"] > 0.0
    assert keras.mixed_precision.dtype_policy().name == "float32"
