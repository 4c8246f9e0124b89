"""Pictures of Selfie pretraining: predictions, training curves, TensorBoard.

- `predict_patches`: which patch a pretrainer picks for each masked
  position of a few images, as NumPy arrays.
- `plot_predictions`: the paper's Figure 3, images with their masked
  positions outlined (right in green, wrong in red) and one position's
  candidate patches ranked by score; `draw_predictions` draws given scores.
- `plot_training_curves`: loss, patch accuracy and kNN accuracy by epoch.
- `PredictionImages`: a callback logging `plot_predictions` to TensorBoard
  every few epochs.

All return `matplotlib.figure.Figure`s made without `pyplot` and write PNGs
when given a `path`; no display is needed.

Example:

```python
from keras_selfie import visualization

visualization.plot_predictions(pretrainer, test_images[:8], path="pred.png")
history = pretrainer.fit(train, epochs=10)
visualization.plot_training_curves(history, path="curves.png")
```
"""

from keras_selfie.visualization.callbacks import PredictionImages
from keras_selfie.visualization.callbacks import figure_to_image
from keras_selfie.visualization.curves import plot_training_curves
from keras_selfie.visualization.predictions import draw_predictions
from keras_selfie.visualization.predictions import plot_predictions
from keras_selfie.visualization.predictions import predict_patches
from keras_selfie.visualization.predictions import rank_candidates
