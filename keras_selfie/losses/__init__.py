from keras_selfie.losses.distractor_softmax_loss import DistractorSoftmaxLoss
from keras_selfie.losses.distractor_softmax_loss import DISTRACTORS
from keras_selfie.losses.distractor_softmax_loss import SIMILARITIES
from keras_selfie.losses.distractor_softmax_loss import distractor_labels
from keras_selfie.losses.distractor_softmax_loss import distractor_logits
from keras_selfie.losses.distractor_softmax_loss import (
    distractor_softmax_crossentropy,
)
from keras_selfie.losses.nt_xent_loss import NTXentLoss
from keras_selfie.losses.nt_xent_loss import nt_xent
from keras_selfie.losses.nt_xent_loss import nt_xent_logits
from keras_selfie.losses.masked_reconstruction_loss import (
    MaskedReconstructionLoss,
)
from keras_selfie.losses.masked_reconstruction_loss import (
    masked_squared_error,
)
from keras_selfie.losses.pixel_crossentropy_loss import PixelCrossentropyLoss
from keras_selfie.losses.pixel_crossentropy_loss import pixel_crossentropy
from keras_selfie.losses.pixel_crossentropy_loss import rebalancing_weights
from keras_selfie.losses.pixel_crossentropy_loss import smoothed_prior
from keras_selfie.losses.pixel_loss import PixelLoss
