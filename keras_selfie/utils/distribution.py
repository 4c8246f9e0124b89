"""What a step needs to know about the `tf.distribute` replica it runs on."""

import keras
from keras import ops


def replica_info():
    """Returns `(replica_id, num_replicas)` of the current replica context.

    `(0, 1)` outside a `tf.distribute` replica context or on other backends.
    The replica id may be a tensor (it is one under `MirroredStrategy` and
    `TPUStrategy`).
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            return context.replica_id_in_sync_group, (
                context.num_replicas_in_sync
            )
    return 0, 1


def replica_slice_of_global_draw(draw, local_batch_size):
    """Draws random values for the global batch and keeps this replica's rows.

    Under a `tf.distribute` strategy every replica sees the same seed state,
    so drawing only `local_batch_size` rows would give all replicas the same
    numbers. Drawing the global batch and slicing it gives each example the
    value it would get on a single device with the same global batch, which
    makes distributed and single-device training comparable step by step.

    Args:
        draw: callable taking a batch size and returning a tensor whose first
            axis is that batch size.
        local_batch_size: the batch size on this replica.
    """
    replica_id, num_replicas = replica_info()
    values = draw(local_batch_size * num_replicas)
    if num_replicas == 1:
        return values
    start = [replica_id * local_batch_size] + [0] * (len(values.shape) - 1)
    shape = [local_batch_size] + list(ops.shape(values)[1:])
    return ops.slice(values, start, shape)


def scale_for_replicas(value):
    """Divides a per-replica loss term by the number of replicas.

    Gradients are summed over replicas, so each replica's share of a mean
    must be divided by their number.
    """
    _, num_replicas = replica_info()
    if num_replicas == 1:
        return value
    return value / num_replicas
