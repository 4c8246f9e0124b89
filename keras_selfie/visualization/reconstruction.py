"""Pictures of the pretext tasks that paint pixels.

Context encoder, super-resolution and colorization predict images; their pictures show,
one row per image, what the model was given beside what it painted and the
original, titled with the mean squared error per pixel and channel (of
the images in the model's scale, `[0, 1]` for uint8 images). Predictions
are shown clipped to `[0, 1]`. `plot_predictions` draws them; each
function here is one method's picture (`register_picture`).
"""

import numpy as np
from keras import ops

from keras_selfie.data.color import rgb_to_lab
from keras_selfie.visualization.figures import Panel
from keras_selfie.visualization.figures import draw_panels
from keras_selfie.visualization.predictions import model_outputs
from keras_selfie.visualization.predictions import register_picture


def squared_error(predicted, target, mask=None):
    """The mean squared error of each image, per pixel and channel.

    Args:
        predicted, target: `(batch, height, width, channels)`.
        mask: optional `(batch, height, width)`, 1 on the pixels counted.

    Returns:
        A float array `(batch,)`.
    """
    errors = np.mean(
        np.square(np.asarray(predicted, "float64") - target), axis=-1
    )
    if mask is None:
        return errors.mean(axis=(1, 2))
    return (errors * mask).sum(axis=(1, 2)) / np.maximum(
        np.sum(mask, axis=(1, 2)), 1
    )


@register_picture(
    "context_encoder",
    "the image, the input with its hole, and the hole filled by the "
    "prediction",
)
def plot_context_encoder_predictions(pretrainer, images):
    """Draws each image, its input with the hole, and the inpainted image.

    One row per image: the original, the input the model sees (the hidden
    region in the fill colour) titled with the error of the fill colour
    in the hole (the trivial baseline), and the inpainted image: the
    original outside the hole and the model's prediction in it, titled
    with the prediction's error in the hole.

    Args:
        pretrainer: a `ContextEncoderPretrainer`.
        images: `(batch, height, width, channels)` images, checked.

    Returns:
        A `matplotlib.figure.Figure`, one row of 3 panels per image.

    Example:

    ```python
    plot_predictions(inpainter, test_images[:4], path="inpainted.png")
    ```
    """
    outputs = model_outputs(pretrainer, images)
    targets, mask = outputs["targets"], outputs["mask"]
    inpainted = np.where(
        mask[..., None] > 0, outputs["reconstruction"], targets
    )
    fill_error = squared_error(outputs["inputs"], targets, mask)
    error = squared_error(outputs["reconstruction"], targets, mask)
    rows = [
        [
            Panel(targets[i], "original"),
            Panel(outputs["inputs"][i], f"input: error {fill_error[i]:.4f}"),
            Panel(inpainted[i], f"inpainted: error {error[i]:.4f}"),
        ]
        for i in range(len(images))
    ]
    return draw_panels(
        rows,
        "Images, the inputs with their hole, and the hole painted by the "
        "model (mean squared error in the hole; the input's is the fill "
        "colour's)",
    )


@register_picture(
    "super_resolution",
    "the low-resolution input, its upsampled copy, the prediction and the "
    "original",
)
def plot_super_resolution_predictions(pretrainer, images):
    """Draws each image's low-resolution copy, what the model restores
    from it, and the original.

    One row per image: the low-resolution copy (`factor` times smaller,
    drawn at the same size), that copy upsampled to the image's size (the
    model's input and the trivial baseline), the model's prediction, and
    the original; the upsampled copy and the prediction are titled with
    their error against the original.

    Args:
        pretrainer: a `SuperResolutionPretrainer`.
        images: `(batch, height, width, channels)` images, checked.

    Returns:
        A `matplotlib.figure.Figure`, one row of 4 panels per image.

    Example:

    ```python
    plot_predictions(upsampler, test_images[:4], path="restored.png")
    ```
    """
    outputs = model_outputs(pretrainer, images)
    targets = outputs["targets"]
    low = outputs["low_resolution"]
    input_error = squared_error(outputs["inputs"], targets)
    error = squared_error(outputs["reconstruction"], targets)
    rows = [
        [
            Panel(low[i], f"{low.shape[1]}x{low.shape[2]} input"),
            Panel(
                outputs["inputs"][i],
                f"{pretrainer.upsampling}: error {input_error[i]:.4f}",
            ),
            Panel(
                outputs["reconstruction"][i],
                f"predicted: error {error[i]:.4f}",
            ),
            Panel(targets[i], "original"),
        ]
        for i in range(len(images))
    ]
    return draw_panels(
        rows,
        f"Images restored from {pretrainer.factor} times smaller copies "
        "(mean squared error against the original; the upsampled copy is "
        "the model's input)",
    )


@register_picture(
    "colorization",
    "the grey input, the image coloured by the model and the original",
)
def plot_colorization_predictions(pretrainer, images):
    """Draws each image's lightness, the colours the model gives it, and
    the original.

    One row per image: the grey image the model sees (its L channel), the
    image coloured by the model (`ColorizationPretrainer.colorize`: the
    image's own L with the predicted a and b, the annealed mean for the
    classification loss) and the original; the coloured image is titled
    with its error against the original.

    Args:
        pretrainer: a `ColorizationPretrainer`.
        images: `(batch, height, width, 3)` images, checked.

    Returns:
        A `matplotlib.figure.Figure`, one row of 3 panels per image.

    Example:

    ```python
    plot_predictions(colorizer, test_images[:4], path="colourised.png")
    ```
    """
    originals = ops.convert_to_numpy(pretrainer.preprocess(images))
    lightness = ops.convert_to_numpy(rgb_to_lab(originals))[..., :1] / 100
    coloured = ops.convert_to_numpy(pretrainer.colorize(images))
    error = squared_error(coloured, originals)
    rows = [
        [
            Panel(np.repeat(lightness[i], 3, axis=-1), "grey input"),
            Panel(coloured[i], f"coloured: error {error[i]:.4f}"),
            Panel(originals[i], "original"),
        ]
        for i in range(len(images))
    ]
    return draw_panels(
        rows,
        "Grey images coloured by the model (mean squared error of the "
        "coloured image)",
    )
