"""Does another pooling of P's whole-image features show the gain?

kNN and linear probe (5,000 labeled train images, the first 1,000 test
images, as in the ablation) of P run on whole 32x32 images, its 8x8
feature map pooled two ways: globally (the ablation's view, 256 values) or
per patch cell (4x4 cells of 2x2, concatenated in grid order: 16 x 256
values, which keeps where things are, as the patch `concat` view does), at
both batch-norm settings, for four ablation rows and random P.

    TFDS_DATA_DIR=../shared/datasets/tensorflow_datasets \
        python docs/results/ablation/spatial_views/spatial_views.py
"""

import json
import pathlib
import time

import keras

from keras_selfie import data
from keras_selfie import evaluation
from keras_selfie import training
from keras_selfie.models.resnet import feature_map_network

HERE = pathlib.Path(__file__).resolve().parent
ROWS = HERE.parent
# Row -> (folder of its weights, its SelfiePretrainer arguments).
rows = {
    "context_batch": ("context_batch", {}),
    "context_batch_masked": (
        "context_batch_masked", {"context_view": "masked_image"}
    ),
    "context_batch_head": ("context_batch_head", {"projection_head": True}),
    "paper": ("paper", {"query": "paper"}),
    "random": (None, {}),
}
train = data.load_tfds("cifar10", "train[:5000]", labeled=True)
test = data.load_tfds("cifar10", "test[:1000]", labeled=True)


class CellPool(keras.layers.Layer):
    """P's 8x8 map of a 32x32 image, averaged over each patch's 2x2 cells
    and concatenated."""

    def __init__(self, feature_map, **kwargs):
        super().__init__(**kwargs)
        self.feature_map = feature_map

    def call(self, images):
        maps = self.feature_map(images, training=False)
        dim = maps.shape[-1]
        cells = keras.ops.reshape(maps, (-1, 4, 2, 4, 2, dim))
        return keras.ops.reshape(
            keras.ops.mean(cells, axis=(2, 4)), (-1, 16 * dim)
        )


out = {}
for name, (folder, config) in rows.items():
    start = time.time()
    model = training.build_pretrainer("cpu", seed=0, **config)
    if folder:
        model.load_weights(ROWS / folder / "selfie_pretrainer.weights.h5")
    results = {}
    for setting, network in evaluation.batch_norm_settings(
        model, train
    ).items():
        inputs = keras.Input((32, 32, 3))
        cells = keras.Model(
            inputs, CellPool(feature_map_network(network))(inputs)
        )
        for view, extractor in (("global", network), ("cells", cells)):
            train_features = evaluation.extract_features(extractor, train)
            test_features = evaluation.extract_features(extractor, test)
            results[f"{setting}/{view}"] = {
                "knn": float(evaluation.knn_accuracy(
                    *train_features, *test_features
                )),
                "probe": evaluation.linear_probe_on_features(
                    *train_features, *test_features, epochs=50,
                    num_classes=10, seed=0,
                )["accuracy"],
            }
    out[name] = results
    print(name, round(time.time() - start), json.dumps(results), flush=True)
(HERE / "spatial_views.json").write_text(json.dumps(out, indent=1))
