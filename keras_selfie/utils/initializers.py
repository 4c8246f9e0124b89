import keras


def bert_initializer():
    """The truncated normal (stddev 0.02) that BERT uses for its weights."""
    return keras.initializers.TruncatedNormal(stddev=0.02)


def clone_initializer(initializer, offset=0):
    """Returns a fresh copy of `initializer` for one more weight.

    A seeded Keras initializer gives the same values on every call, so two
    weights built from one argument would start equal. The copy's integer
    seed, if it has one, is shifted by `offset`: give each weight that shares
    an initializer its own offset.
    """
    if not isinstance(initializer, keras.initializers.Initializer):
        return initializer
    config = initializer.get_config()
    if isinstance(config.get("seed"), int):
        config["seed"] += offset
    return initializer.__class__.from_config(config)
