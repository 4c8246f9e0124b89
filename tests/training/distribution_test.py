"""One device, `MirroredStrategy` and XLA give the same training.

Float32 training of a ResNet is sensitive enough that reordered sums (two
replicas, or XLA's fusions) move the weights by about 1% of one step's
update, so the exact comparisons run the model in float64, where the only
differences left are real ones (a loss summed instead of averaged over
replicas, another split of the patches, other batch statistics).

The tiny pretrainer's full P is trained under Mirrored and XLA once each;
the checks of the loss and its formulations run on
`seeded_run.shallow_patch_network` (P with one block per stage), whose
steps cost a third as much.
"""

import numpy as np
import pytest
import tensorflow as tf

import keras_selfie
from keras_selfie.utils.distribution import replica_info
from conftest import TINY
from conftest import two_cpu_strategy
from seeded_run import assert_same_state
from seeded_run import fit_one_step
from seeded_run import random_images
from seeded_run import seeded_pretrainer
from seeded_run import shallow_patch_network


@pytest.fixture(scope="module")
def single_device_run():
    """Loss and state of the reference step: one device, float64; and the
    weights it started from."""
    model = seeded(TINY, tf.distribute.get_strategy())
    start = model.get_weights()
    return (*fit_one_step(model, random_images(GLOBAL_BATCH)), start)


@pytest.fixture(scope="module")
def shallow_single_device_run():
    """Loss and state of the reference step on the shallow P."""
    return train(TINY, tf.distribute.get_strategy(), shallow=True)


# Images of every step: 4 per replica.
GLOBAL_BATCH = 8


def seeded(config, strategy, jit_compile=False, **kwargs):
    """`seeded_run.seeded_pretrainer` in float64, stepping eagerly unless
    XLA is under test: tracing the train step of even the tiny ResNet costs
    more on 2 CPUs than a few eager steps."""
    return seeded_pretrainer(
        config, strategy, jit_compile=jit_compile,
        run_eagerly=not jit_compile, **kwargs,
    )


def train(config, strategy, **kwargs):
    """One step from seeded weights (`seeded`'s `kwargs`) on `GLOBAL_BATCH`
    images; returns its loss and the state after it
    (`seeded_run.step_state`: weights, random states and optimizer
    variables, which decide every later step)."""
    return fit_one_step(
        seeded(config, strategy, **kwargs), random_images(GLOBAL_BATCH)
    )


def two_cpus():
    return two_cpu_strategy()


def first_copies(state):
    """A `step_state`'s first replica's values; the weights come first."""
    return [copies[0] for copies in state]


def max_difference(values_a, values_b):
    """Largest difference over the shorter list's entries."""
    return max(np.abs(a - b).max() for a, b in zip(values_a, values_b))


# Keras reports the loss through a float32 metric.
LOSS_RTOL = 1e-6


class UnscaledDistractorLoss(keras_selfie.DistractorSoftmaxLoss):
    """The bug the mirrored test must catch: each replica's mean loss is not
    divided by the number of replicas, so the summed gradients double."""

    def __call__(self, y_true, y_pred, sample_weight=None):
        _, num_replicas = replica_info()
        return num_replicas * super().__call__(y_true, y_pred, sample_weight)


def test_mirrored_equals_single_device(tiny_config, single_device_run):
    # The default formulation: batch distractors, gathered from both
    # replicas, so each query sees the 8 images' candidates either way.
    assert keras_selfie.SelfiePretrainer(**tiny_config).distractors == (
        "batch"
    )
    single_loss, single_state, start = single_device_run
    mirrored_loss, mirrored_state = train(tiny_config, two_cpus())
    np.testing.assert_allclose(mirrored_loss, single_loss, rtol=LOSS_RTOL)
    assert_same_state(mirrored_state, single_state)
    # Training really moved the weights.
    assert max_difference(start, first_copies(single_state)) > 1e-3


def test_mirrored_equals_single_device_for_the_paper(tiny_config):
    paper = dict(tiny_config, query="paper")
    single_loss, single_state = train(
        paper, tf.distribute.get_strategy(), shallow=True
    )
    mirrored_loss, mirrored_state = train(paper, two_cpus(), shallow=True)
    np.testing.assert_allclose(mirrored_loss, single_loss, rtol=LOSS_RTOL)
    assert_same_state(mirrored_state, single_state)


def test_batch_candidates_per_replica_would_differ(
    tiny_config, shallow_single_device_run
):
    """Scoring only the replica's own images (no gather) is another loss:
    the gather is what makes the test above pass."""
    import keras_selfie.losses.distractor_softmax_loss as module

    single_loss, _ = shallow_single_device_run
    originals = module.gather_across_replicas, module.replica_row_offset
    module.gather_across_replicas = lambda values: values
    module.replica_row_offset = lambda local_batch_size: 0
    try:
        local_loss, _ = train(tiny_config, two_cpus(), shallow=True)
    finally:
        module.gather_across_replicas, module.replica_row_offset = originals
    assert abs(local_loss - single_loss) > 1e-3


def test_mirrored_test_catches_a_loss_not_averaged_over_replicas(
    tiny_config, shallow_single_device_run
):
    _, single_state = shallow_single_device_run
    reference = keras_selfie.SelfiePretrainer(**tiny_config)
    _, wrong_state = train(
        tiny_config,
        two_cpus(),
        loss=UnscaledDistractorLoss(
            distractors=reference.distractors,
            similarity=reference.similarity,
            temperature=reference.temperature,
            dtype="float64",
        ),
        shallow=True,
    )
    assert max_difference(
        first_copies(wrong_state), first_copies(single_state)
    ) > 1e-4


def test_each_replica_gets_its_own_rows_of_the_global_split(tiny_config):
    strategy = two_cpus()
    with strategy.scope():
        # The split draws no weight of P: the shallow P is built faster.
        model = keras_selfie.SelfiePretrainer(
            **tiny_config, seed=5, backbone=shallow_patch_network(
                tiny_config["stem"], tiny_config["width"]
            ),
        )
    state = model.seed_generator.state.numpy().copy()
    _, expected = model.sample_split(8)
    model.seed_generator.state.assign(state)
    per_replica = tf.function(
        lambda: strategy.run(lambda: model.sample_split(4)[1])
    )()
    halves = [
        t.numpy() for t in strategy.experimental_local_results(per_replica)
    ]
    np.testing.assert_array_equal(np.concatenate(halves), expected.numpy())


def test_jit_compile_gives_the_same_training(tiny_config, single_device_run):
    eager_loss, eager_state, _ = single_device_run
    xla_loss, xla_state = train(
        tiny_config, tf.distribute.get_strategy(), jit_compile=True
    )
    np.testing.assert_allclose(xla_loss, eager_loss, rtol=LOSS_RTOL)
    assert_same_state(xla_state, eager_state)


def test_jit_compile_loss_in_float32(tiny_config):
    """The float32 forward pass and loss under XLA (the float64 test above
    compares whole training steps; a float32 step would compile again)."""
    model = seeded_pretrainer(
        tiny_config, tf.distribute.get_strategy(), dtype="float32",
        shallow=True,
    )
    images = random_images()[:8]
    positions = np.stack([np.roll(np.arange(16), i)[:4] for i in range(8)])

    def loss(images, positions):
        outputs = model(images, decoder_positions=positions, training=True)
        return model.compute_loss(y_pred=outputs)

    eager = loss(images, positions)
    xla = tf.function(loss, jit_compile=True)(images, positions)
    # XLA fuses and reorders float32 sums: same split, same weights, a loss
    # equal to a few float32 roundings of P's activations.
    np.testing.assert_allclose(float(xla), float(eager), rtol=1e-4)
    assert float(eager) > 1.0  # a real loss, not a degenerate 0
