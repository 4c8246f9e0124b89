"""`plot_predictions`: the picture of any pretrainer's predictions.

Every pretext task has one picture, drawn by one function registered under
the task's name in `keras_selfie.methods` (`register_picture`); this module
is the only place that chooses among them. `plot_predictions` finds the
pretrainer's method (its class, or the nearest registered class it derives
from), checks the images and the options, and runs the method's function
with the pretrainer's random draws fixed by `seed`, so that the same seed
draws the same picture and the draws of training are left as they were.

A picture function takes `(pretrainer, images, **options)`, with `images`
a checked NumPy array of the pretrainer's image size, and returns a
`matplotlib.figure.Figure`; it runs the model through `model_outputs`.
Its keyword arguments are the options `plot_predictions` accepts for that
method.
"""

import contextlib
import inspect

import keras

from keras_selfie import methods
from keras_selfie.models.pretrainer import Pretrainer
from keras_selfie.utils.validation import check_int_in_range
from keras_selfie.visualization.figures import save_figure
from keras_selfie.visualization.figures import to_image_array

# Method name -> (picture function, one line: what the picture shows).
PICTURES = {}


def register_picture(method, description):
    """Registers a function as the picture of a method's predictions.

    Args:
        method: the method's name in `keras_selfie.methods` (its
            `Pretrainer` class and the classes derived from it get this
            picture).
        description: one line, what the picture shows (`keras-selfie
            visualize --help` lists them).

    Returns:
        A decorator that registers the function and returns it unchanged.

    Example:

    ```python
    @register_picture("colorization", "grey input, colourised, original")
    def plot_colorization(pretrainer, images):
        colourised = np.asarray(pretrainer.colorize(images))
        return draw_panels(
            [[Panel(displayable(images)[i], "original"),
              Panel(colourised[i], "colourised")]
             for i in range(len(images))],
            "Images and their colourised grey copies",
        )
    ```
    """

    def register(function):
        PICTURES[method] = (function, description)
        return function

    return register


def picture_descriptions():
    """Method name -> what its picture shows, for every method drawn, in
    the order of `keras_selfie.methods.names()`."""
    names = [name for name in methods.names() if name in PICTURES]
    names += [name for name in PICTURES if name not in names]
    return {name: PICTURES[name][1] for name in names}


def picture_method(pretrainer):
    """The name of the method whose picture `pretrainer` gets.

    Its class's registered method name (`keras_selfie.methods`) if that
    has a picture, else that of the nearest base class that has one.

    Raises:
        ValueError: for a model no picture draws; the message lists the
            methods and classes that have one.
    """
    if isinstance(pretrainer, Pretrainer):
        for cls in type(pretrainer).__mro__:
            for name, (module, class_name, _) in methods.METHODS.items():
                if (
                    name in PICTURES and cls.__name__ == class_name
                    and cls.__module__ == module
                ):
                    return name
    known = ", ".join(
        f"{methods.METHODS[name][1]} ({name})" for name in PICTURES
        if name in methods.METHODS
    )
    raise ValueError(
        "plot_predictions draws the predictions of these pretrainers: "
        f"{known}. Received: {type(pretrainer).__name__}"
    )


def picture_options(method):
    """The options (keyword arguments) of a method's picture, by name,
    with their defaults."""
    parameters = inspect.signature(PICTURES[method][0]).parameters
    return {
        name: parameter.default
        for name, parameter in list(parameters.items())[2:]
    }


def check_picture(pretrainer, images, options):
    """Checks what `plot_predictions` is given, before the model runs.

    Returns:
        `(method, images)`: the method whose picture is drawn
        (`picture_method`) and the images as a NumPy array.

    Raises:
        ValueError: for a model no picture draws, images not of the
            pretrainer's size, or an option the method's picture does not
            take (the message lists those it takes).
    """
    method = picture_method(pretrainer)
    accepted = picture_options(method)
    for name in options:
        if name not in accepted:
            raise ValueError(
                f"`{name}` is not an option of the {method} picture; it "
                f"takes {sorted(accepted) or 'none'}. Received: "
                f"{name}={options[name]!r}"
            )
    images = to_image_array(
        images, (*pretrainer.image_size, pretrainer.num_channels)
    )
    return method, images


@contextlib.contextmanager
def seed_states(pretrainer, seed=None):
    """Fixes the draws of a pretrainer's own seed generators in a block.

    Within the block, each seed generator of the pretrainer (those that
    draw its pairs, splits, permutations, views...) starts from the state
    a new `keras.random.SeedGenerator(seed)` has, or, with `seed=None`,
    from its state at the start of the block; after it, every generator is
    back in its state from before. So a block draws the same as any other
    block with the same seed, and training draws as if it had not run.

    Args:
        pretrainer: a `Pretrainer`.
        seed: int >= 0 or `None`.

    Example:

    ```python
    with seed_states(pretrainer, seed=0):
        outputs = pretrainer(images, training=False)
    ```
    """
    if seed is not None:
        seed = int(check_int_in_range("seed", seed, 0))
    generators = pretrainer._own_seed_generators()
    saved = [keras.ops.convert_to_numpy(g.state.value) for g in generators]
    try:
        if seed is not None:
            for generator in generators:
                generator.state.assign(
                    keras.random.SeedGenerator(seed).state.value
                )
        yield
    finally:
        for generator, state in zip(generators, saved):
            generator.state.assign(state)


def model_outputs(pretrainer, images, replay=None, **call_arguments):
    """Runs a pretrainer in inference mode and returns its outputs.

    `pretrainer(images, training=False, **call_arguments)`: batch
    normalisation's moving statistics, no dropout. Then, if given,
    `replay()` runs with the seed generators back in the state the call
    started from, so that what it draws (the method's own sampling
    functions) is what the call drew: the views, copies or patch
    positions that the outputs do not include.

    Args:
        pretrainer: a `Pretrainer`.
        images: the images, as `plot_predictions` checked them.
        replay: optional function of no arguments.
        **call_arguments: other arguments of the pretrainer's `call`.

    Returns:
        The outputs as a dict of NumPy arrays, or with `replay`,
        `(outputs, drawn)`: `drawn` is what `replay` returns, its tensors
        as NumPy arrays.
    """
    with seed_states(pretrainer):
        outputs = pretrainer(images, training=False, **call_arguments)
    outputs = keras.tree.map_structure(keras.ops.convert_to_numpy, outputs)
    if replay is None:
        return outputs
    with seed_states(pretrainer):
        drawn = replay()
    return outputs, keras.tree.map_structure(
        keras.ops.convert_to_numpy, drawn
    )


def plot_predictions(pretrainer, images, path=None, seed=0, **options):
    """Draws what a pretrainer predicts on `images`, whatever its method.

    Each method has its picture (`picture_descriptions()` lists them):

    - `selfie`: the paper's Figure 3 (`plot_selfie_predictions`): the
      masked positions outlined, right in green, wrong in red, and one
      position's candidate patches ranked by score;
    - `rotation`: each image in its 4 rotations, titled with the predicted
      angle;
    - `jigsaw`: the shuffled tiles, and the tiles put back by the
      predicted permutation (the solved puzzle);
    - `relative_patch_location`: the centre patch and its neighbour, and
      the neighbour where the model places it on the 3x3 grid;
    - `exemplar`: the transformed copies, each titled with the seed image
      (surrogate class) predicted for it;
    - `simclr`: the two views of each image and the view each matched;
    - `context_encoder`: the image, the input with its hole, and the hole
      filled by the prediction;
    - `super_resolution`: the low-resolution input, its upsampled copy,
      the prediction and the original.

    Right predictions are in `correct_color` (green), wrong ones in
    `wrong_color` (red): a title's colour and the panel's frame.

    The model runs in inference mode (`training=False`). Its random draws
    (masked positions, puzzles, pairs, copies, views, holes) come from its
    seed generators set to `seed` for the picture and restored after it
    (`seed_states`): the same seed and weights draw the same picture, and
    training draws what it would have drawn.

    Args:
        pretrainer: a `Pretrainer` of a method with a picture (a
            `SelfiePretrainer`, `RotationPretrainer`, ...; a class derived
            from one gets its picture).
        images: `(batch, height, width, channels)` uint8 or float images
            of the pretrainer's size (NumPy array or tensor). Float images
            within `[0, 1]` are shown as they are; for Selfie's picture,
            others are scaled per image from their minimum to their
            maximum.
        path: optional file path; the figure is written there as a PNG.
        seed: int >= 0, the seed of the model's random draws for the
            picture, or `None` for draws from the generators' current
            states (left as they are too).
        **options: the method's options (`picture_options(method)`): for
            Selfie `decoder_positions`, `image_index`, `position_index`,
            `num_candidates`, `columns` (`plot_selfie_predictions`); for the
            methods with right and wrong predictions `correct_color` and
            `wrong_color`; for Exemplar `surrogate_labels`.

    Returns:
        The `matplotlib.figure.Figure` (made without `pyplot`, so it works
        without a display and leaves the user's backend alone).

    Raises:
        ValueError: for a model no picture draws (the message lists those
            that have one), images of another size, or an option the
            method's picture does not take.

    Example:

    ```python
    figure = plot_predictions(pretrainer, test_images[:8], path="pred.png")
    ```
    """
    method, images = check_picture(pretrainer, images, options)
    with seed_states(pretrainer, seed):
        figure = PICTURES[method][0](pretrainer, images, **options)
    return save_figure(figure, path)
