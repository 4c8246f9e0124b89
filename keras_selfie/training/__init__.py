"""Pieces of a pretraining run shared by the command line and the examples.

- `training_callbacks`: resumable runs (`BackupAndRestore` with random
  state, `ModelCheckpoint`, `TerminateOnNaN`, a restart-proof
  `CSVLogger`, optionally TensorBoard); `backup_epoch` tells where a run
  resumes.
- `load_images`, `labeled_splits`, `pretraining_batches`, `num_batches`:
  images from a TFDS
  name or a folder, as the endless, seeded batches a resumed run can skip
  into.
- `read_history`, `trim_history`: the per-epoch log across restarts.
- `set_seed`: seeds, and optionally deterministic TensorFlow ops.

Example:

```python
from keras_selfie import optimizers
from keras_selfie import training

images = training.load_images(dataset="cifar10")
done = training.backup_epoch("runs/selfie/backup")
train = training.pretraining_batches(images, 128, seed=0,
                                     skip_batches=done * 390)
pretrainer.compile(optimizer=optimizers.make_optimizer(
    "sgd", weight_decay=1e-4, total_steps=100 * 390, warmup_steps=5 * 390))
pretrainer.fit(train, epochs=100, steps_per_epoch=390,
               callbacks=training.training_callbacks("runs/selfie"))
```
"""

from keras_selfie.training.callbacks import BackupAndRestore
from keras_selfie.training.callbacks import CSVLogger
from keras_selfie.training.callbacks import DivergenceError
from keras_selfie.training.callbacks import TerminateOnNaN
from keras_selfie.training.callbacks import backup_epoch
from keras_selfie.training.callbacks import random_state_variables
from keras_selfie.training.callbacks import training_callbacks
from keras_selfie.training.history import read_history
from keras_selfie.training.history import trim_history
from keras_selfie.training.inputs import labeled_splits
from keras_selfie.training.inputs import load_images
from keras_selfie.training.inputs import num_batches
from keras_selfie.training.inputs import pretraining_batches
from keras_selfie.training.seeding import set_seed
