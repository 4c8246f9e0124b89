"""Pictures of pretraining: predictions, training curves, TensorBoard.

- `plot_predictions`: what a pretrainer predicts on a few images, whatever
  its pretext task: Selfie's Figure 3 (masked positions outlined, right in
  green, wrong in red, and one position's candidates ranked by score),
  rotations with their predicted angles, solved jigsaw puzzles, patches
  placed on their 3x3 grid, Exemplar's copies with their predicted seeds,
  SimCLR's views with their matches, inpainted and super-resolved images.
  Each method's picture is one function (`selfie`, `classification`,
  `reconstruction` modules) registered by method name
  (`register_picture`); `picture_descriptions()` lists them.
- `predict_patches`: which patch a Selfie pretrainer picks for each masked
  position, as NumPy arrays; `draw_predictions` draws given scores.
- `plot_training_curves`: loss, patch accuracy and kNN accuracy by epoch.
- `PredictionImages`: a callback logging `plot_predictions` to TensorBoard
  every few epochs, for any method.

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

from keras_selfie.visualization import classification
from keras_selfie.visualization import reconstruction
from keras_selfie.visualization import selfie
from keras_selfie.visualization.callbacks import PredictionImages
from keras_selfie.visualization.callbacks import figure_to_image
from keras_selfie.visualization.curves import plot_training_curves
from keras_selfie.visualization.predictions import picture_descriptions
from keras_selfie.visualization.predictions import picture_options
from keras_selfie.visualization.predictions import plot_predictions
from keras_selfie.visualization.predictions import register_picture
from keras_selfie.visualization.selfie import draw_predictions
from keras_selfie.visualization.selfie import plot_selfie_predictions
from keras_selfie.visualization.selfie import predict_patches
from keras_selfie.visualization.selfie import rank_candidates
