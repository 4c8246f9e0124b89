from keras_selfie.models.resnet import patch_network
from keras_selfie.models.resnet import resnet50
from keras_selfie.models.colorization_pretrainer import ColorizationPretrainer
from keras_selfie.models.context_encoder_pretrainer import (
    ContextEncoderPretrainer,
)
from keras_selfie.models.exemplar_pretrainer import ExemplarPretrainer
from keras_selfie.models.jigsaw_pretrainer import JigsawPretrainer
from keras_selfie.models.pretrainer import ClassificationPretrainer
from keras_selfie.models.pretrainer import Pretrainer
from keras_selfie.models.relative_patch_location_pretrainer import (
    RelativePatchLocationPretrainer,
)
from keras_selfie.models.reconstruction_pretrainer import (
    PixelDecoderPretrainer,
)
from keras_selfie.models.reconstruction_pretrainer import (
    ReconstructionPretrainer,
)
from keras_selfie.models.rotation_pretrainer import RotationPretrainer
from keras_selfie.models.saving import load_pretrainer
from keras_selfie.models.selfie_pretrainer import SelfiePretrainer
from keras_selfie.models.simclr_pretrainer import SimCLRPretrainer
from keras_selfie.models.super_resolution_pretrainer import (
    SuperResolutionPretrainer,
)
from keras_selfie.models.transfer import copy_patch_network_weights
from keras_selfie.models.transfer import transfer_to_resnet36_attention_pooling
from keras_selfie.models.transfer import transfer_to_resnet50
