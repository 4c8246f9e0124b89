"""keras_selfie: Selfie self-supervised image pretraining for Keras 3."""

try:
    import tensorflow  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the install
    raise ImportError(
        "keras_selfie needs TensorFlow. Install it with the package: "
        "`pip install keras-selfie[cpu]` (tensorflow-cpu) or "
        "`pip install keras-selfie[gpu]` (tensorflow with CUDA)."
    ) from error

from keras_selfie import data
from keras_selfie import evaluation
from keras_selfie import layers
from keras_selfie import losses
from keras_selfie import methods
from keras_selfie import models
from keras_selfie import optimizers
from keras_selfie import presets
from keras_selfie import training
from keras_selfie import visualization
from keras_selfie.layers import AttentionPooling
from keras_selfie.layers import PatchExtractor
from keras_selfie.layers import RowColPositionalEmbedding
from keras_selfie.layers import TransformerBlock
from keras_selfie.losses import DistractorSoftmaxLoss
from keras_selfie.losses import MaskedReconstructionLoss
from keras_selfie.losses import NTXentLoss
from keras_selfie.losses import PixelCrossentropyLoss
from keras_selfie.models import ColorizationPretrainer
from keras_selfie.models import ContextEncoderPretrainer
from keras_selfie.models import ExemplarPretrainer
from keras_selfie.models import JigsawPretrainer
from keras_selfie.models import Pretrainer
from keras_selfie.models import RelativePatchLocationPretrainer
from keras_selfie.models import RotationPretrainer
from keras_selfie.models import SelfiePretrainer
from keras_selfie.models import SimCLRPretrainer
from keras_selfie.models import SuperResolutionPretrainer
from keras_selfie.models import load_pretrainer
from keras_selfie.models import patch_network
from keras_selfie.models import resnet50
from keras_selfie.models import transfer_to_resnet36_attention_pooling
from keras_selfie.models import transfer_to_resnet50

__version__ = "0.1.0"

# Subpackages imported on first use, as `keras_selfie.tuning` or by
# `from keras_selfie import tuning`, because they load a library that
# `import keras_selfie` should not (tuning: keras_tuner, several seconds).
_LAZY_SUBPACKAGES = ("tuning",)


def __getattr__(name):
    if name in _LAZY_SUBPACKAGES:
        import importlib

        # Importing a submodule also binds it here, so this runs once.
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_SUBPACKAGES))
