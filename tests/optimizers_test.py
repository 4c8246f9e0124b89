import keras
import numpy as np
import pytest

from keras_selfie.optimizers import cosine_schedule
from keras_selfie.optimizers import make_optimizer


def test_cosine_schedule_warms_up_then_decays():
    schedule = cosine_schedule(0.1, total_steps=10, warmup_steps=2)
    rates = [float(schedule(step)) for step in range(11)]
    np.testing.assert_allclose(rates[:3], [0.0, 0.05, 0.1], atol=1e-6)
    # Cosine from the peak at step 2 to 0 at step 10: half-way at step 6.
    assert rates[6] == pytest.approx(0.05, abs=1e-6)
    assert all(a >= b for a, b in zip(rates[2:], rates[3:]))
    assert rates[-1] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="warmup_steps"):
        cosine_schedule(0.1, total_steps=2, warmup_steps=2)


def test_sgd_on_a_schedule():
    optimizer = make_optimizer(
        "sgd", 0.2, weight_decay=1e-4, total_steps=4, warmup_steps=1
    )
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert optimizer.nesterov and optimizer.momentum == pytest.approx(0.9)
    assert optimizer.weight_decay == pytest.approx(1e-4)
    schedule = keras.optimizers.schedules.deserialize(
        optimizer.get_config()["learning_rate"]
    )
    rates = [float(schedule(step)) for step in range(5)]
    # Warm-up to 0.2 at step 1, then 0.2 * (1 + cos(pi * t / 3)) / 2.
    np.testing.assert_allclose(rates, [0.0, 0.2, 0.15, 0.05, 0.0], atol=1e-6)


def test_adamw_constant_rate_and_defaults():
    optimizer = make_optimizer("adamw", weight_decay=0.05)
    assert isinstance(optimizer, keras.optimizers.AdamW)
    assert float(optimizer.learning_rate) == pytest.approx(1e-3)
    assert optimizer.weight_decay == pytest.approx(0.05)
    sgd = make_optimizer("sgd", momentum=0.5, nesterov=False)
    assert float(sgd.learning_rate) == pytest.approx(0.1)
    assert sgd.weight_decay is None and not sgd.nesterov
    assert sgd.momentum == pytest.approx(0.5)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(name="adam"), "name"),
        (dict(learning_rate=0.0), "learning_rate"),
        (dict(weight_decay=-1.0), "weight_decay"),
        (dict(momentum=-0.1), "momentum"),
        (dict(warmup_steps=5), "total_steps"),
        (dict(total_steps=0), "total_steps"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        make_optimizer(**kwargs)


def test_compile_makes_the_optimizer_variables_before_fit():
    """`Pretrainer.compile` builds the optimizer for every trainable
    variable (Keras would make them inside the first traced step, which it
    then traces twice)."""
    from conftest import TINY_BACKBONE

    from keras_selfie import methods

    model = methods.get("rotation")(**TINY_BACKBONE, seed=0)
    optimizer = make_optimizer("sgd", 0.1)
    assert not optimizer.built
    model.compile(optimizer=optimizer)
    assert optimizer.built
    momenta = [v for v in optimizer.variables if "momentum" in v.path]
    assert len(momenta) == len(model.trainable_variables) > 100
    assert int(optimizer.iterations.numpy()) == 0
