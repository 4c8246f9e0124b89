"""Hyperparameter search for pretraining with KerasTuner.

`SelfieHyperModel` builds compiled `SelfiePretrainer`s from a search space
over the pretext network and the optimizer; `PretrainerHyperModel` does the
same for any method of `keras_selfie.methods` (the optimizer and the
method's declared `HYPERPARAMETERS`); `selfie_objective` and
`pretrainer_objective` name what a tuner should optimise among the metrics
the pretrainer reports.

Example:

```python
import keras_tuner
from keras_selfie import tuning

hypermodel = tuning.SelfieHyperModel(
    image_size=32, patch_size=8, width=0.25,
    search_space={"num_layers": (1, 4), "dropout": [0.0, 0.1]},
)
tuner = keras_tuner.RandomSearch(
    hypermodel,
    objective=tuning.selfie_objective("val_patch_accuracy"),
    max_trials=10,
)
tuner.search(train, validation_data=val, epochs=5, steps_per_epoch=100)
```
"""

from keras_selfie.tuning.hypermodel import OBJECTIVE_DIRECTIONS
from keras_selfie.tuning.hypermodel import PretrainerHyperModel
from keras_selfie.tuning.hypermodel import SelfieHyperModel
from keras_selfie.tuning.hypermodel import pretrainer_objective
from keras_selfie.tuning.hypermodel import selfie_objective
