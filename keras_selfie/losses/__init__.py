from keras_selfie.losses.distractor_softmax_loss import DistractorSoftmaxLoss
from keras_selfie.losses.distractor_softmax_loss import distractor_logits
from keras_selfie.losses.distractor_softmax_loss import (
    distractor_softmax_crossentropy,
)
