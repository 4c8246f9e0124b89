import keras


def bert_initializer():
    """The truncated normal (stddev 0.02) that BERT uses for its weights."""
    return keras.initializers.TruncatedNormal(stddev=0.02)


def clone_initializer(initializer):
    """Returns a fresh copy of `initializer`.

    Seeded Keras initializers give the same values on every call; a copy per
    weight keeps two weights built from one argument from starting equal.
    """
    if not isinstance(initializer, keras.initializers.Initializer):
        return initializer
    return initializer.__class__.from_config(initializer.get_config())
