"""Input checks shared by the losses that compare two embeddings."""

from keras import ops


def check_paired_inputs(loss_name, y_true, y_pred, sample_weight, shape,
                        roles):
    """Checks a loss's two embedding tensors; returns the sample weights.

    Args:
        loss_name: the loss class's name, for the messages.
        y_true, y_pred: the two tensors; each must have the rank of
            `shape`, and they must have the same shape.
        sample_weight: `None` or weights; weights of rank 1 (one per
            example) get a trailing axis, so that Keras aligns them with
            the first axis rather than the last.
        shape: the expected shape in words, e.g. `"(batch_size, M, d)"`.
        roles: what `y_true` and `y_pred` are, e.g. `("decoder features",
            "queries")`.

    Returns:
        `sample_weight`, reshaped as above.
    """
    rank = shape.count(",") + 1
    for arg, value in (("y_true", y_true), ("y_pred", y_pred)):
        if len(value.shape) != rank:
            raise ValueError(
                f"{loss_name} expects `{arg}` of shape {shape}. "
                f"Received shape={tuple(value.shape)}"
            )
    if any(
        a is not None and b is not None and a != b
        for a, b in zip(y_true.shape, y_pred.shape)
    ):
        raise ValueError(
            f"{loss_name} expects `y_true` ({roles[0]}) and `y_pred` "
            f"({roles[1]}) of the same shape. Received "
            f"{tuple(y_true.shape)} and {tuple(y_pred.shape)}"
        )
    if sample_weight is not None:
        sample_weight = ops.convert_to_tensor(sample_weight)
        if len(sample_weight.shape) == 1:
            sample_weight = sample_weight[:, None]
    return sample_weight
