"""Data for Selfie: sources, augmentation, label subsets, tf.data pipelines,
and the CIELAB colours of colorization (`color`).

Three sources (`load_tfds`, `load_image_folder`, `from_arrays`) give the
same unbatched datasets of uint8 `(height, width, 3)` images or
`(image, label)` pairs; `make_dataset` turns any of them into the batched,
augmented, prefetched input of `SelfiePretrainer.fit` or of fine-tuning.

Example:

```python
from keras_selfie import data

images = data.load_tfds("cifar10", split="train")
train = data.make_dataset(
    images, batch_size=128, augment=data.pretraining_augmentation(), seed=0
)
pretrainer.fit(train, epochs=100)

labeled = data.load_tfds("cifar10", split="train", labeled=True)
few, _ = data.labeled_subset(labeled, fraction=0.08, seed=0)
```
"""

from keras_selfie.data.augment import CIFAR10_MEAN
from keras_selfie.data.augment import CIFAR10_STD
from keras_selfie.data.augment import IMAGENET_MEAN
from keras_selfie.data.augment import IMAGENET_STD
from keras_selfie.data.augment import center_crop
from keras_selfie.data.augment import evaluation_preprocessing
from keras_selfie.data.augment import finetuning_augmentation
from keras_selfie.data.augment import normalization_layer
from keras_selfie.data.augment import normalize
from keras_selfie.data.augment import pad_and_crop
from keras_selfie.data.augment import pretraining_augmentation
from keras_selfie.data.augment import random_flip
from keras_selfie.data.augment import random_resized_crop
from keras_selfie.data.augment import scale_values
from keras_selfie.data.color import CIFAR10_AB_PRIOR
from keras_selfie.data.color import ab_bin_lightness
from keras_selfie.data.color import ab_gamut_bins
from keras_selfie.data.color import annealed_mean_ab
from keras_selfie.data.color import estimate_ab_prior
from keras_selfie.data.color import lab_to_rgb
from keras_selfie.data.color import nearest_ab_bins
from keras_selfie.data.color import rgb_to_lab
from keras_selfie.data.color import soft_encode_ab
from keras_selfie.data.exemplars import exemplar_dataset
from keras_selfie.data.pipeline import distributed_dataset
from keras_selfie.data.pipeline import make_dataset
from keras_selfie.data.sources import from_arrays
from keras_selfie.data.sources import load_image_folder
from keras_selfie.data.sources import load_tfds
from keras_selfie.data.subsets import labeled_subset
from keras_selfie.data.subsets import stratified_subset_indices
