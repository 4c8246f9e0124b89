"""The one home of the optimizers and learning-rate schedules.

Pretraining, fine-tuning, the tuner, the examples and the benchmarks all make
their optimizer here, so that a choice (Nesterov, how weight decay is
applied, the warm-up) is written once.

Example:

```python
from keras_selfie import optimizers

pretrainer.compile(optimizer=optimizers.make_optimizer(
    "sgd", learning_rate=0.1, weight_decay=1e-4,
    total_steps=100 * 390, warmup_steps=5 * 390))
```
"""

import keras

from keras_selfie.utils.validation import check_choice
from keras_selfie.utils.validation import check_non_negative
from keras_selfie.utils.validation import check_positive_int
from keras_selfie.utils.validation import check_positive_number

OPTIMIZERS = ("sgd", "adamw")
DEFAULT_LEARNING_RATES = {"sgd": 0.1, "adamw": 1e-3}


def cosine_schedule(learning_rate, total_steps, warmup_steps=0):
    """Linear warm-up from 0, then cosine decay to 0.

    Args:
        learning_rate: float > 0, the peak learning rate.
        total_steps: int, all training steps, warm-up included.
        warmup_steps: int >= 0, steps of linear warm-up; fewer than
            `total_steps`.

    Returns:
        A `keras.optimizers.schedules.CosineDecay`.
    """
    check_positive_number("learning_rate", learning_rate)
    check_positive_int("total_steps", total_steps)
    check_non_negative("warmup_steps", warmup_steps, integer=True)
    if warmup_steps >= total_steps:
        raise ValueError(
            "Argument `warmup_steps` must be smaller than `total_steps` "
            f"({total_steps}). Received: warmup_steps={warmup_steps}"
        )
    if warmup_steps == 0:
        return keras.optimizers.schedules.CosineDecay(
            float(learning_rate), decay_steps=total_steps
        )
    return keras.optimizers.schedules.CosineDecay(
        0.0,
        decay_steps=total_steps - warmup_steps,
        warmup_target=float(learning_rate),
        warmup_steps=warmup_steps,
    )


def build_optimizer_variables(model):
    """Creates a compiled model's optimizer variables now, before `fit`.

    Without a distribution strategy Keras creates them while it traces the
    first training step, and `tf.function` then traces that step a second
    time (it traces again whenever its first trace made variables): with
    them made beforehand, the first `fit` of the tiny pretrainer costs
    about 60% of the CPU time (`docs/PERFORMANCE.md`). Keras does the same
    in `compile_from_config` and under a strategy. An unbuilt model is
    left as it is: its variables do not exist yet.

    Args:
        model: a compiled `keras.Model`.
    """
    if model.built and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def make_optimizer(
    name="sgd",
    learning_rate=None,
    weight_decay=0.0,
    momentum=0.9,
    nesterov=True,
    total_steps=None,
    warmup_steps=0,
):
    """SGD with (Nesterov) momentum or AdamW, optionally on a schedule.

    Args:
        name: `"sgd"` or `"adamw"`.
        learning_rate: float > 0, the (peak) learning rate; `None` gives
            0.1 for SGD and 1e-3 for AdamW.
        weight_decay: float >= 0, Keras' decoupled weight decay
            (`w -= learning_rate * weight_decay * w` each step; 0: none).
        momentum: float >= 0, momentum of SGD (ignored by AdamW).
        nesterov: bool, Nesterov momentum for SGD (as the PyTorch
            reimplementation of Selfie).
        total_steps: int, all training steps: the rate follows
            `cosine_schedule(learning_rate, total_steps, warmup_steps)` and
            reaches 0 there. `None` keeps the rate constant.
        warmup_steps: int >= 0, steps of linear warm-up from 0; only with
            `total_steps`.

    Returns:
        A `keras.optimizers.Optimizer`. With a schedule, the rate is a
        function of the optimizer's step counter, so that a restored
        counter (`BackupAndRestore`) restores the rate too.
    """
    check_choice("name", name, OPTIMIZERS)
    if learning_rate is None:
        learning_rate = DEFAULT_LEARNING_RATES[name]
    check_positive_number("learning_rate", learning_rate)
    check_non_negative("weight_decay", weight_decay)
    check_non_negative("momentum", momentum)
    if total_steps is None:
        if warmup_steps:
            raise ValueError(
                "Argument `warmup_steps` needs `total_steps` (the schedule's "
                f"length). Received: warmup_steps={warmup_steps}, "
                "total_steps=None"
            )
        rate = float(learning_rate)
    else:
        rate = cosine_schedule(learning_rate, total_steps, warmup_steps)
    if name == "sgd":
        return keras.optimizers.SGD(
            rate,
            momentum=momentum,
            nesterov=nesterov,
            weight_decay=weight_decay or None,
        )
    return keras.optimizers.AdamW(rate, weight_decay=weight_decay)
