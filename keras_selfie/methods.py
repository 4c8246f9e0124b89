"""The registry of pretext tasks: one name per `Pretrainer` class.

Every method trains the same backbone `P` with `fit(unlabeled_images)`,
transfers into the same ResNet-50 (`transfer_to_resnet50`) and goes through
the same evaluation (`keras_selfie.evaluation`), so methods compare on one
protocol. The command line picks one with `keras-selfie pretrain --method
NAME`; `keras-selfie methods` lists them.

Example:

```python
for name, description in keras_selfie.methods.list().items():
    print(f"{name:12} {description}")
RotationPretrainer = keras_selfie.methods.get("rotation")
```
"""

import builtins
import importlib

# Name -> (module, class, one-line description with the paper). Classes are
# imported on first use.
METHODS = {
    "selfie": (
        "keras_selfie.models.selfie_pretrainer",
        "SelfiePretrainer",
        "masked patch prediction: pick each hidden patch among candidates "
        "from the visible ones (Trinh, Luong, Le, 2019)",
    ),
    "rotation": (
        "keras_selfie.models.rotation_pretrainer",
        "RotationPretrainer",
        "rotation prediction: which of 0/90/180/270 degrees each image is "
        "turned by, all four in one batch (Gidaris et al., 2018)",
    ),
    "relative_patch_location": (
        "keras_selfie.models.relative_patch_location_pretrainer",
        "RelativePatchLocationPretrainer",
        "context prediction: which of its 8 neighbours a patch is, beside "
        "a centre patch (Doersch, Gupta, Efros, 2015)",
    ),
    "exemplar": (
        "keras_selfie.models.exemplar_pretrainer",
        "ExemplarPretrainer",
        "Exemplar-CNN: which seed image each heavily transformed copy "
        "comes from, its surrogate class (Dosovitskiy et al., 2014)",
    ),
    "jigsaw": (
        "keras_selfie.models.jigsaw_pretrainer",
        "JigsawPretrainer",
        "jigsaw puzzles: which of K maximally distant permutations shuffled "
        "a 3x3 grid of jittered tiles (Noroozi and Favaro, 2016)",
    ),
    "simclr": (
        "keras_selfie.models.simclr_pretrainer",
        "SimCLRPretrainer",
        "SimCLR: two augmented views of every image; each must find the "
        "other among the batch's views, NT-Xent loss (Chen et al., 2020)",
    ),
    "context_encoder": (
        "keras_selfie.models.context_encoder_pretrainer",
        "ContextEncoderPretrainer",
        "context-encoder inpainting: paint a hidden central square (or "
        "random blocks) back from the rest, L2 loss (Pathak et al., 2016)",
    ),
    "super_resolution": (
        "keras_selfie.models.super_resolution_pretrainer",
        "SuperResolutionPretrainer",
        "super-resolution: restore each image from its 4x smaller copy, "
        "bicubic-upsampled, L2 loss (SRCNN's setting, Dong et al., 2014)",
    ),
    "colorization": (
        "keras_selfie.models.colorization_pretrainer",
        "ColorizationPretrainer",
        "colorization: the colour (ab) of the picture from its lightness L, "
        "class-rebalanced classification over 229 ab bins (Zhang, Isola, "
        "Efros, 2016)",
    ),
}


def register(name, module, class_name, description):
    """Adds a method to the registry (for methods outside keras_selfie).

    Args:
        name: the method's name on the command line.
        module: the module that defines the class, as an import path.
        class_name: the `Pretrainer` subclass's name in `module`.
        description: one line: what the task is, and its paper.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"Argument `name` must be a non-empty string. Received: "
            f"name={name!r}"
        )
    METHODS[name] = (module, class_name, description)


def list():  # noqa: A001 - keras_selfie.methods.list(), as presets.list()
    """The registered methods, each with a one-line description.

    Returns:
        A dict from method name to its description.
    """
    return {name: entry[2] for name, entry in METHODS.items()}


def names():
    """The registered method names, in registry order."""
    return builtins.list(METHODS)


def get(name):
    """The `Pretrainer` subclass of a method.

    Raises:
        ValueError: for a name that is not registered; the message lists
            the known ones.
    """
    if not isinstance(name, str) or name not in METHODS:
        raise ValueError(
            f"Argument `method` must be one of {names()} "
            "(`keras_selfie.methods.list()` describes them). "
            f"Received: method={name!r}"
        )
    module, class_name, _ = METHODS[name]
    return getattr(importlib.import_module(module), class_name)


def name_of(pretrainer):
    """The registered name of a pretrainer (an instance or a class)."""
    cls = pretrainer if isinstance(pretrainer, type) else type(pretrainer)
    for name, (module, class_name, _) in METHODS.items():
        if cls.__name__ == class_name and cls.__module__ == module:
            return name
    raise ValueError(
        f"{cls.__name__} is not a registered method; known: {names()}."
    )
