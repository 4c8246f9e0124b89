"""The optimizers of Selfie pretraining."""

import keras

from keras_selfie.evaluation.finetune import cosine_schedule
from keras_selfie.utils.validation import check_choice

OPTIMIZERS = ("sgd", "adamw")
DEFAULT_LEARNING_RATES = {"sgd": 0.1, "adamw": 1e-3}


def pretraining_optimizer(
    name="sgd",
    learning_rate=None,
    weight_decay=1e-4,
    total_steps=1,
    warmup_steps=0,
):
    """SGD with Nesterov momentum or AdamW, with warm-up and cosine decay.

    Args:
        name: `"sgd"` (momentum 0.9, Nesterov, as the PyTorch
            reimplementation) or `"adamw"`.
        learning_rate: the peak learning rate; `None` gives 0.1 for SGD and
            1e-3 for AdamW.
        weight_decay: float >= 0, Keras' decoupled weight decay (0: none).
        total_steps: int, all training steps; the rate reaches 0 there.
        warmup_steps: int, steps of linear warm-up from 0.

    Returns:
        A `keras.optimizers.Optimizer` whose learning rate is
        `evaluation.cosine_schedule(...)` of its step counter, so that a
        restored counter (`BackupAndRestore`) restores the rate too.
    """
    check_choice("name", name, OPTIMIZERS)
    if learning_rate is None:
        learning_rate = DEFAULT_LEARNING_RATES[name]
    if isinstance(weight_decay, bool) or not isinstance(
        weight_decay, (int, float)
    ) or weight_decay < 0:
        raise ValueError(
            "Argument `weight_decay` must be a number >= 0. "
            f"Received: weight_decay={weight_decay!r}"
        )
    schedule = cosine_schedule(learning_rate, total_steps, warmup_steps)
    if name == "sgd":
        return keras.optimizers.SGD(
            schedule, momentum=0.9, nesterov=True,
            weight_decay=weight_decay or None,
        )
    return keras.optimizers.AdamW(schedule, weight_decay=weight_decay)
