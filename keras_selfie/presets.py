"""The named presets of keras_selfie: the one home of every size and budget.

A preset, as in keras-hub, names a configuration a user can start from:

- `config`: the `SelfiePretrainer` arguments (architecture and Selfie's
  formulation);
- `pretraining`: the run (`training.run_pretraining`, `keras-selfie
  pretrain`, the examples): epochs, steps, batch size, optimizer and
  schedule; what a preset leaves out comes from `DEFAULT_PRETRAINING`;
- `evaluation` (only where the Table 1 protocol of
  `examples/reproduce_table1.py` has been sized for it): kNN, linear probe
  and fine-tuning budgets.

Named presets hold no weights: `SelfiePretrainer.from_preset(name)` builds
a fresh model. A folder written by `pretrainer.save_to_preset(path)` holds
the config and the trained weights, and `from_preset(path)` loads both.

Example:

```python
for name, description in keras_selfie.presets.list().items():
    print(f"{name:18} {description}")
pretrainer = keras_selfie.SelfiePretrainer.from_preset("paper_imagenet224")
```
"""

import builtins
import copy

# What a preset's `pretraining` leaves out. SGD with Nesterov momentum, peak
# rate 0.1 (the PyTorch reimplementation's), weight decay 1e-4, a warm-up
# epoch then cosine decay; `steps_per_epoch=None` is one pass over the data.
DEFAULT_PRETRAINING = dict(
    epochs=10,
    steps_per_epoch=None,
    batch_size=64,
    optimizer="sgd",
    learning_rate=None,  # make_optimizer's: 0.1 for SGD, 1e-3 for AdamW
    weight_decay=1e-4,
    warmup_epochs=1,
)

# P = ResNet-50 stages 1-3 at a quarter width (d = 256), 3 Transformer
# layers: the CPU-sized network of the main job and the CPU Table 1.
_QUARTER_WIDTH = dict(
    image_size=32,
    patch_size=8,
    stem="cifar",
    width=0.25,
    num_layers=3,
    num_heads=8,
    intermediate_dim=640,
)

# The paper's network for 32x32 images (P at full width, d = 1024; 3 layers,
# 32 heads and feed-forward 640 as the PyTorch reimplementation
# wuhoward/SELFIE), with PAPER.md's formulation exactly.
_PAPER_CIFAR10 = dict(
    image_size=32,
    patch_size=8,
    stem="cifar",
    width=1.0,
    num_layers=3,
    num_heads=32,
    intermediate_dim=640,
    query="paper",
)

PRESETS = {
    "tiny": dict(
        description=(
            "The smallest network with the full structure (P at 1/8 width, "
            "d = 128, one Transformer layer); a run that checks that "
            "everything works, in about a minute on 2 CPU cores. The tests "
            "use it; its numbers mean nothing."
        ),
        config=dict(
            image_size=32,
            patch_size=8,
            stem="cifar",
            width=0.125,
            num_layers=1,
            num_heads=4,
            intermediate_dim=64,
        ),
        # At these sizes a stage's cost is mostly fixed (building models,
        # tracing, eager calls), so the images are few; two epochs and two
        # fractions keep a curve and a table of rows; kNN's k = 20 needs
        # more than 20 train images, and 128 is enough.
        pretraining=dict(
            epochs=2,
            steps_per_epoch=2,
            batch_size=16,
            learning_rate=0.01,
        ),
        evaluation=dict(
            knn_every=1,
            knn_train_images=128,
            knn_test_images=64,
            probe_train_images=128,
            probe_epochs=2,
            fractions=(0.05, 0.08),
            seeds=1,
            finetune_epochs=(1,),
            finetune_steps_per_epoch=1,
            finetune_batch_size=16,
            finetune_learning_rate=0.1,
            finetune_weight_decay=5e-4,
            finetune_warmup_epochs=0,
            finetune_batch_norm_batches=1,
            test_images=64,
            # Eager: no graph tracing per model.
            run_eagerly=True,
        ),
    ),
    "cifar10_short": dict(
        description=(
            "The main job (`make pretrain`): the quarter-width network, 600 "
            "steps of 64 CIFAR-10 images, about 10 minutes of training on 2 CPU cores."
        ),
        config=dict(_QUARTER_WIDTH),
        pretraining=dict(epochs=10, steps_per_epoch=60, batch_size=64),
    ),
    "cpu": dict(
        description=(
            "Table 1 on 2 CPU cores (examples/reproduce_table1.py): the "
            "quarter-width network, 1,200 pretraining steps, fine-tuning "
            "10/10/4 passes at 5/8/20% labels, 3 seeds; about 3-4 hours."
        ),
        config=dict(_QUARTER_WIDTH),
        # Measured with this preset (--pretrain-epochs 1 --finetune-epochs
        # 1): one pretraining epoch of 120 steps took 154 s (tracing and a
        # kNN evaluation included), one fine-tuning run of 15 steps 25-27 s
        # (tracing and the 1,000 test images included): ~1 s per step.
        pretraining=dict(epochs=10, steps_per_epoch=120, batch_size=64),
        evaluation=dict(
            knn_every=5,
            knn_train_images=2_000,
            knn_test_images=1_000,
            probe_train_images=5_000,
            probe_epochs=50,
            fractions=(0.05, 0.08, 0.20),
            seeds=3,
            # Passes over the labeled subset, per fraction: 10 at 5% and 8%,
            # 4 at 20% (390, 620 and 624 steps of 64), the same for both
            # arms.
            finetune_epochs=(10, 10, 4),
            finetune_steps_per_epoch=None,
            finetune_batch_size=64,
            # At 0.1 the runs from pretrained P diverged in the warm-up
            # epoch (loss 2.8 -> 9.7, then chance: 13.7% test accuracy)
            # while those from scratch trained; at 0.02 both train (5%, seed
            # 0: 31.3% pretrained, 34.8% scratch). Measured with this preset.
            finetune_learning_rate=0.02,
            finetune_weight_decay=5e-4,
            finetune_warmup_epochs=1,
            # Short runs leave BN's moving averages (momentum 0.99) far from
            # the weights' statistics: measured 15% / 11% test accuracy
            # without, after 100 steps.
            finetune_batch_norm_batches=50,
            test_images=1_000,
            run_eagerly=False,
        ),
    ),
    "paper_cifar10": dict(
        description=(
            "The paper on CIFAR-10: full-width P (d = 1024), 3 Transformer "
            "layers, the paper's formulation, 200 epochs of 128 images; "
            "for a GPU or TPU."
        ),
        config=dict(_PAPER_CIFAR10),
        pretraining=dict(
            epochs=200,
            steps_per_epoch=None,  # 50,000 // 128 = 390
            batch_size=128,
            warmup_epochs=5,
        ),
        evaluation=dict(
            knn_every=10,
            knn_train_images=10_000,
            knn_test_images=10_000,
            probe_train_images=50_000,
            probe_epochs=100,
            fractions=(0.05, 0.08, 0.20),
            seeds=3,
            finetune_epochs=(200,),
            finetune_steps_per_epoch=None,  # one pass over the subset
            finetune_batch_size=128,
            finetune_learning_rate=0.1,
            finetune_weight_decay=5e-4,
            finetune_warmup_epochs=5,
            finetune_batch_norm_batches=0,  # long runs: averages settle
            test_images=None,  # the whole test split
            run_eagerly=False,
        ),
    ),
    "paper_imagenet224": dict(
        description=(
            "The paper on 224x224 ImageNet: 32x32 patches (a 7x7 grid), "
            "the ImageNet stem, full-width P (d = 1024), the paper's "
            "formulation; for accelerators."
        ),
        config=dict(
            _PAPER_CIFAR10,
            image_size=224,
            patch_size=32,
            stem="imagenet",
        ),
        pretraining=dict(batch_size=128, warmup_epochs=5),
    ),
}


def list():  # noqa: A001 - keras_selfie.presets.list(), as the issue asks
    """The named presets, each with a one-line description.

    Returns:
        A dict from preset name to its description.
    """
    return {name: preset["description"] for name, preset in PRESETS.items()}


def get(name):
    """A copy of the named preset: `description`, `config`, `pretraining`
    (with `DEFAULT_PRETRAINING` filled in) and, where sized, `evaluation`.

    Raises:
        ValueError: for a name that is not a preset; the message lists the
            known ones.
    """
    if not isinstance(name, str) or name not in PRESETS:
        raise ValueError(
            f"Unknown preset {name!r}. Known presets: "
            f"{builtins.list(PRESETS)} (`keras_selfie.presets.list()` "
            "describes them), or pass the folder of a preset saved with "
            "`save_to_preset`."
        )
    preset = copy.deepcopy(PRESETS[name])
    preset["pretraining"] = {
        **DEFAULT_PRETRAINING,
        **preset.get("pretraining", {}),
    }
    return preset


def fill_arguments(namespace, name, pretraining_prefix=""):
    """Fills the unset (`None`) attributes of `namespace` from a preset.

    What command lines do with `--preset`: every attribute of `namespace`
    named as a key of the preset's `config`, `evaluation` or (with
    `pretraining_prefix` in front) `pretraining` takes the preset's value
    when the user left it at `None`. Keys the namespace lacks are skipped.

    Args:
        namespace: an `argparse.Namespace` (or any object with attributes).
        name: the preset's name.
        pretraining_prefix: put before the `pretraining` keys, e.g.
            `"pretrain_"` for `--pretrain-epochs`.

    Returns:
        `namespace`.
    """
    preset = get(name)
    values = {
        **preset["config"],
        **{
            pretraining_prefix + key: value
            for key, value in preset["pretraining"].items()
        },
        **preset.get("evaluation", {}),
    }
    for key, value in values.items():
        if hasattr(namespace, key) and getattr(namespace, key) is None:
            setattr(namespace, key, value)
    return namespace


def pretraining_arguments(namespace, prefix=""):
    """The run settings (the keys of `DEFAULT_PRETRAINING`) of a namespace.

    What command lines pass to `training.run_pretraining`: the attribute
    `prefix + key` of `namespace` for every key, `None` where it is absent.

    Args:
        namespace: an `argparse.Namespace` (or any object with attributes).
        prefix: put before the keys, e.g. `"pretrain_"`.

    Returns:
        A dict from key (`epochs`, `batch_size`, ...) to value.
    """
    return {
        key: getattr(namespace, prefix + key, None)
        for key in DEFAULT_PRETRAINING
    }
