"""Pretraining runs, for the command line, the examples and users.

- `run_pretraining`: one resumable run from a preset to a saved model
  (strategy, output folder, resume, build, compile, fit, save);
  `build_pretrainer` makes the model of a preset with overrides.

The pieces it is made of:

- `training_callbacks`: resumable runs (`BackupAndRestore` with random
  state, `ModelCheckpoint`, `TerminateOnNaN`, a restart-proof
  `CSVLogger`, optionally TensorBoard); `backup_epoch` tells where a run
  resumes; `StepTimer` times the steps (their median, across restarts).
- `load_images`, `labeled_splits`, `pretraining_batches`, `num_batches`:
  images from a TFDS
  name or a folder, as the endless, seeded batches a resumed run can skip
  into.
- `read_history`, `trim_history`: the per-epoch log across restarts.
- `set_seed`: seeds, and optionally deterministic TensorFlow ops.

Example:

```python
from keras_selfie import training

images = training.load_images(dataset="cifar10")
run = training.run_pretraining(images, "runs/selfie", preset="cpu")
run.pretrainer.save_to_preset("selfie_cpu")   # killed? rerun: it resumes
```
"""

from keras_selfie.training.callbacks import BackupAndRestore
from keras_selfie.training.callbacks import CSVLogger
from keras_selfie.training.callbacks import DivergenceError
from keras_selfie.training.callbacks import StepTimer
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
from keras_selfie.training.run import PretrainingRun
from keras_selfie.training.run import build_pretrainer
from keras_selfie.training.run import run_pretraining
from keras_selfie.training.seeding import set_seed
