"""Evaluation of Selfie pretraining: frozen features and fine-tuning.

- `extract_features`: `P`'s features on whole images (inference mode).
- `knn_accuracy`: cosine kNN with temperature-weighted votes on them.
- `linear_probe`: a linear classifier trained on them, `P` frozen
  (`linear_probe_on_features` on features already computed).
- `finetune`: the paper's Table 1 protocol, a ResNet-50 from `P` (or from
  scratch) trained end to end with SGD, warm-up and cosine decay.
- `recalibrate_batch_norm`: batch-norm statistics averaged over training
  batches after a short run ("precise BN").
- `context_gain`: how much the pretext predictions use the visible
  patches (own context minus another image's).
- `feature_health`: effective rank and spread of features across images.
- `pretext_evaluation`: a pretext task's own figure (patch, pretext or
  contrastive accuracy, reconstruction error) on held-out images, beside
  its chance level or trivial baseline.
- `KNNMonitor`: a callback adding `knn_accuracy` to the logs of
  `SelfiePretrainer.fit`.

Example:

```python
from keras_selfie import data, evaluation

train = data.load_tfds("cifar10", split="train", labeled=True)
test = data.load_tfds("cifar10", split="test", labeled=True)
features = evaluation.extract_features(pretrainer, train)
test_features = evaluation.extract_features(pretrainer, test)
print(evaluation.knn_accuracy(*features, *test_features))
```
"""

from keras_selfie.evaluation.batch_norm import batch_norm_settings
from keras_selfie.evaluation.batch_norm import recalibrate_batch_norm
from keras_selfie.evaluation.batch_norm import recalibrated_patch_network
from keras_selfie.evaluation.callbacks import KNNMonitor
from keras_selfie.evaluation.diagnostics import context_gain
from keras_selfie.evaluation.diagnostics import feature_health
from keras_selfie.evaluation.features import extract_features
from keras_selfie.evaluation.features import patch_feature_network
from keras_selfie.evaluation.features import scale_images
from keras_selfie.evaluation.finetune import build_finetuning_model
from keras_selfie.evaluation.finetune import finetune
from keras_selfie.evaluation.knn import knn_accuracy
from keras_selfie.evaluation.knn import knn_predict
from keras_selfie.evaluation.linear_probe import linear_probe
from keras_selfie.evaluation.linear_probe import linear_probe_on_features
from keras_selfie.evaluation.pretext import chance_level
from keras_selfie.evaluation.pretext import pretext_evaluation
from keras_selfie.evaluation.pretext import pretext_metric
