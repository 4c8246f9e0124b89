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


def in_multi_worker_mode():
    """Whether the current strategy all-reduces across several workers."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    return isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy
    ) and strategy.extended._in_multi_worker_mode()


def logs_for_multi_worker(logs):
    """Gives each scalar log a leading axis of 1 on several workers.

    Keras 3's TensorFlow `fit` (3.15 at least) reduces every per-replica log
    with `strategy.reduce("MEAN", value, axis=0)` under a multi-worker
    `MultiWorkerMirroredStrategy`, which fails for scalars ("Invalid
    reduction dimension 0 for input with 0 dimensions"). With shape `(1,)`
    that reduce is the mean over replicas, a scalar, as on one worker.
    Elsewhere `logs` is returned unchanged.
    """
    if not in_multi_worker_mode():
        return logs
    return {
        name: ops.reshape(value, (1,)) if len(value.shape) == 0 else value
        for name, value in logs.items()
    }


STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def get_strategy(name="default", tpu=None):
    """Returns a `tf.distribute.Strategy` by name.

    Args:
        name: one of `STRATEGIES`:
            - `"default"`: TensorFlow's default strategy (one device: the
              first GPU if there is one, else the CPU).
            - `"mirrored"`: `tf.distribute.MirroredStrategy` over all local
              GPUs (or the CPU).
            - `"multi_worker"`: `tf.distribute.MultiWorkerMirroredStrategy`;
              the cluster and this worker's index are read from the
              `TF_CONFIG` environment variable, which must be set.
            - `"tpu"`: `tf.distribute.TPUStrategy` on the TPU named by `tpu`.
        tpu: optional TPU name or address for `"tpu"` (`None`: the TPU of
            this VM or of `TPU_NAME`).

    Returns:
        The strategy; build and compile models inside `strategy.scope()`.
    """
    import os

    import tensorflow as tf

    if name not in STRATEGIES:
        raise ValueError(
            f"Argument `name` must be one of {STRATEGIES}. Received: "
            f"name={name!r}"
        )
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError(
                "Strategy 'multi_worker' reads the cluster from the "
                "`TF_CONFIG` environment variable, which is not set. Set it "
                "on every worker, e.g. TF_CONFIG='{\"cluster\": {\"worker\": "
                "[\"host1:12345\", \"host2:12345\"]}, \"task\": {\"type\": "
                "\"worker\", \"index\": 0}}'."
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def gather_across_replicas(values):
    """Concatenates every replica's `values` along the first axis.

    Under a `tf.distribute` strategy with several replicas, returns the
    replicas' tensors in replica order (`ReplicaContext.all_gather`, whose
    gradient sends each replica the part that is its own); elsewhere
    `values` itself, so that one device and several replicas see the same
    global batch. `replica_row_offset` tells where this replica's rows are.

    Args:
        values: tensor whose first axis is the local batch.
    """
    _, num_replicas = replica_info()
    if num_replicas == 1:
        return values
    import tensorflow as tf

    return tf.distribute.get_replica_context().all_gather(values, axis=0)


def replica_row_offset(local_batch_size):
    """The global row of this replica's first example (0 on one device).

    Local batches may differ in size (the last batch of a dataset), so this
    is the sum of the sizes of the replicas before this one.
    """
    replica_id, num_replicas = replica_info()
    if num_replicas == 1:
        return 0
    sizes = gather_across_replicas(
        ops.reshape(ops.cast(local_batch_size, "int32"), (1,))
    )
    before = ops.cast(
        ops.less(ops.arange(num_replicas, dtype="int32"), replica_id),
        "int32",
    )
    return ops.sum(sizes * before)
