import keras
from keras import ops

from keras_selfie.data.transforms import ROTATIONS
from keras_selfie.data.transforms import rotate90
from keras_selfie.models.pretrainer import ClassificationPretrainer
from keras_selfie.utils.random import seeded_construction
from keras_selfie.utils.validation import check_positive_int


@keras.saving.register_keras_serializable(package="keras_selfie")
class RotationPretrainer(ClassificationPretrainer):
    """Rotation prediction (Gidaris, Singh, Komodakis, 2018).

    Every image of the batch goes through the backbone `P` in all four
    rotations, 0, 90, 180 and 270 degrees, in the same batch (the paper's
    finding: all four rotations of an image together train better than one
    random rotation each), and a classifier on `P`'s pooled features says
    which rotation each copy has. To tell, `P` must recognise the objects
    and their usual orientation.

    The classifier is one dense layer on `P`'s globally pooled features, as
    the paper's RotNet ends with global average pooling and a linear layer;
    `head_hidden_dim` puts a hidden layer before it.

    `call` returns `"logits"` `(4 * batch_size, 4)` and `"labels"` `(4 *
    batch_size,)`: rows `k * batch_size ... (k + 1) * batch_size - 1` are
    the images rotated by `k` quarter turns (counter-clockwise), label `k`.
    Chance is 1/4.

    Args:
        head_hidden_dim: `None` (a linear classifier, the paper's) or an
            int: the width of one ReLU hidden layer before it.
        backbone: `None` or a `keras.Model` from images to `(batch, d)`
            features, used as `P`.
        **kwargs: the arguments of `Pretrainer`: `image_size` (square
            images only), `num_channels`, `stem`, `width`,
            `synchronized_batch_norm` and `seed` (of the initialisation),
            and `keras.Model`'s (`name`, `dtype`).

    Example:

    ```python
    pretrainer = keras_selfie.methods.get("rotation")(width=0.25)
    pretrainer.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    pretrainer.fit(unlabeled_images, epochs=10)
    resnet = keras_selfie.transfer_to_resnet50(pretrainer, classes=10)
    ```

    Reference:
     - [Gidaris et al., 2018](https://arxiv.org/abs/1803.07728)
    """

    HYPERPARAMETERS = {
        "head_hidden_dim": ("int", "linear", (64, 512, 64),
                            check_positive_int),
    }

    def __init__(self, head_hidden_dim=None, backbone=None, **kwargs):
        super().__init__(**kwargs)
        if self.image_size[0] != self.image_size[1]:
            raise ValueError(
                "RotationPretrainer needs square images (a quarter turn "
                "would change their shape). Received: image_size="
                f"{self.image_size}"
            )
        if head_hidden_dim is not None:
            head_hidden_dim = check_positive_int(
                "head_hidden_dim", head_hidden_dim
            )
        self.head_hidden_dim = head_hidden_dim
        self.num_classes = len(ROTATIONS)
        with seeded_construction(self.seed):
            self.patch_network = self.make_backbone(backbone)
            self.head = classification_head(
                self.num_classes, head_hidden_dim, self.dtype_policy
            )
            self.build((None, *self.image_size, self.num_channels))

    def build(self, input_shape=None):
        self.head.build((None, self.feature_dim))
        self.built = True

    def call(self, images, training=None):
        images = self.preprocess(images)
        rotated = ops.concatenate(
            [rotate90(images, k) for k in ROTATIONS], axis=0
        )
        batch_size = ops.shape(images)[0]
        labels = ops.repeat(
            ops.arange(self.num_classes, dtype="int32"), batch_size
        )
        features = self.patch_network(rotated, training=training)
        logits = ops.cast(self.head(features), "float32")
        return {"logits": logits, "labels": labels}

    def get_config(self):
        config = super().get_config()
        config["head_hidden_dim"] = self.head_hidden_dim
        return config


def classification_head(num_classes, hidden_dim=None, dtype=None,
                        name="head", batch_norm=False, synchronized=False):
    """A dense classifier, with one ReLU hidden layer of `hidden_dim`
    units before it unless `hidden_dim` is `None`.

    With `batch_norm`, the hidden layer is a dense layer without bias,
    batch normalisation (over the replicas' global batch with
    `synchronized`) and ReLU: the classifier then learns at the same
    learning rate whatever the scale of its inputs."""
    layers = []
    if hidden_dim is not None and batch_norm:
        layers += [
            keras.layers.Dense(
                hidden_dim, use_bias=False, dtype=dtype, name=f"{name}_hidden"
            ),
            keras.layers.BatchNormalization(
                synchronized=synchronized, dtype=dtype,
                name=f"{name}_batch_norm",
            ),
            keras.layers.Activation("relu", dtype=dtype, name=f"{name}_relu"),
        ]
    elif hidden_dim is not None:
        layers.append(keras.layers.Dense(
            hidden_dim, activation="relu", dtype=dtype, name=f"{name}_hidden"
        ))
    layers.append(keras.layers.Dense(
        num_classes, dtype=dtype, name=f"{name}_logits"
    ))
    return keras.Sequential(layers, name=name)
