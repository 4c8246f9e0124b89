"""The Table 1 reproduction runs end to end (tiny preset, real CIFAR-10)."""

import itertools
import json
import os
import time

import numpy as np
import pytest

from conftest import load_example


def test_reproduce_table1_smoke(tfds_data_dir, tmp_path):
    example = load_example("reproduce_table1")
    argv = [
        "--smoke",
        "--data-dir", tfds_data_dir,
        "--output-dir", str(tmp_path),
        "--verbose", "0",
    ]
    start = time.time()
    returned = example.main(argv)
    elapsed = time.time() - start
    table_path = tmp_path / "table1.md"
    json_path = tmp_path / "results.json"
    assert table_path.is_file() and json_path.is_file()
    results = json.loads(json_path.read_text())
    assert results["table"] == json.loads(json.dumps(returned["table"]))
    # The tiny preset's values, as the example's flags read them.
    preset = vars(example.parse_args(["--smoke"]))
    fractions = preset["fractions"]
    table = table_path.read_text()
    # Every accuracy is the share of right answers among a preset number of
    # test images.
    assert_share_of(preset["test_images"], *(
        run["accuracy"] for run in results["runs"]
    ))

    # The paper's row, as copied from PAPER.md.
    assert example.PAPER_TABLE1_CIFAR10[0.05]["supervised"] == (75.9, 0.7)
    assert example.PAPER_TABLE1_CIFAR10[1.0]["selfie"] == (95.7, 0.1)
    assert "75.9 +- 0.7" in table and "79.3 +- 1.0" in table
    assert "80.3 +- 0.3" in table

    rows = {row["fraction"]: row for row in results["table"]}
    assert sorted(rows) == sorted(fractions)
    for fraction in fractions:
        row = rows[fraction]
        assert row["paper"] == json.loads(
            json.dumps(example.PAPER_TABLE1_CIFAR10[fraction])
        )
        runs = [r for r in results["runs"] if r["fraction"] == fraction]
        # The row is made of its runs: accuracies by seed, mean and std in
        # percent, the delta, and the table prints them.
        for init in ("scratch", "pretrained"):
            accuracies = [r["accuracy"] for r in runs if r["init"] == init]
            assert row[f"{init}_accuracies"] == accuracies
            assert row[f"{init}_mean"] == pytest.approx(
                100 * np.mean(accuracies)
            )
            assert row[f"{init}_std"] == 0.0  # One seed.
        assert row["delta"] == pytest.approx(
            row["pretrained_mean"] - row["scratch_mean"]
        )
        assert (
            f"| {fraction * 100:g}% | {row['scratch_mean']:.1f} +- 0.0 | "
            f"{row['pretrained_mean']:.1f} +- 0.0 | {row['delta']:+.1f} |"
        ) in table
        # One run per seed and arm, each of the preset's length.
        assert sorted((r["seed"], r["init"]) for r in runs) == sorted(
            itertools.product(
                range(preset["seeds"]), ("pretrained", "scratch")
            )
        )
        for run in runs:
            assert run["epochs"] == preset["finetune_epochs"][0]
            assert run["steps"] == (
                run["epochs"] * preset["finetune_steps_per_epoch"]
            )
        assert row["steps"] == runs[-1]["steps"]
        for seed in {r["seed"] for r in runs}:
            pair = [r for r in runs if r["seed"] == seed]
            # Scratch and pretrained saw the same labeled images.
            assert len({r["num_labeled_images"] for r in pair}) == 1
            assert len({r["subset_digest"] for r in pair}) == 1
            # CIFAR-10 has 5,000 images per class; rounding is per class.
            assert pair[0]["num_labeled_images"] == 10 * round(
                fraction * 5000
            )
            assert row["num_labeled_images"] == pair[0]["num_labeled_images"]

    # The pretext curve: one point per epoch, a kNN accuracy at each (every
    # epoch is evaluated), of the preset's number of steps.
    pretraining = results["pretraining"]
    curve = pretraining["curve"]
    assert [p["epoch"] for p in curve] == list(
        range(1, preset["pretrain_epochs"] + 1)
    )
    assert pretraining["steps_per_epoch"] == preset["pretrain_steps_per_epoch"]
    assert pretraining["steps"] == (
        preset["pretrain_epochs"] * preset["pretrain_steps_per_epoch"]
    )
    # Batch distractors: M = 16 // 4 candidates from each image of a batch.
    assert pretraining["chance_patch_accuracy"] == 1 / (
        4 * preset["pretrain_batch_size"]
    )
    assert all(np.isfinite(p["loss"]) for p in curve)
    assert_share_of(preset["knn_test_images"], *(
        p["knn_accuracy"] for p in curve
    ))
    # The frozen-feature figures: the better batch-norm setting's, on the
    # test images.
    for name in ("pretrained", "random"):
        frozen = results["frozen_features"][name]
        for key in ("knn_accuracy", "linear_probe_accuracy"):
            assert_share_of(preset["test_images"], frozen[key])
            assert frozen[key] == max(
                setting[key] for setting in frozen["settings"].values()
            )
            setting = frozen[key.replace("accuracy", "setting")]
            assert frozen["settings"][setting][key] == frozen[key]
    assert results["machine"]["cpu_count"] == os.cpu_count()
    assert results["estimated_seconds"] == example.estimate_seconds(
        example.parse_args(argv)
    )
    # The wall time is this run's: it started after the clock above.
    assert 0 < results["wall_seconds"] <= elapsed + 0.1
    assert_continues_where_it_stopped(example, argv, tmp_path, results)


def assert_share_of(count, *accuracies):
    """Each accuracy is a number of right answers out of `count`."""
    for accuracy in accuracies:
        assert 0.0 <= accuracy <= 1.0
        assert accuracy * count == pytest.approx(round(accuracy * count),
                                                 abs=1e-4)


def assert_continues_where_it_stopped(example, argv, tmp_path, first):
    """Started again with the same arguments, the run keeps every finished
    stage and run and does only what is missing."""
    path = tmp_path / "results.json"
    progress = json.loads(path.read_text())
    # As if killed before the last fine-tuning run.
    dropped = progress["runs"].pop()
    path.write_text(json.dumps(progress))
    start = time.time()
    second = example.main(argv)
    elapsed = time.time() - start
    # The wall time adds this run's to the first's.
    assert second["wall_seconds"] - first["wall_seconds"] == pytest.approx(
        elapsed, abs=1.0
    )
    assert second["runs"][:-1] == first["runs"][:-1]  # not run again
    redone = second["runs"][-1]
    assert (redone["fraction"], redone["seed"], redone["init"]) == (
        dropped["fraction"], dropped["seed"], dropped["init"]
    )
    # The same seed, subset and weights: the same accuracy.
    assert redone["accuracy"] == pytest.approx(dropped["accuracy"], abs=1e-6)
    assert redone["subset_digest"] == dropped["subset_digest"]
    # Pretraining and the frozen features were not redone.
    assert second["pretraining"] == first["pretraining"]
    assert second["frozen_features"] == first["frozen_features"]
    assert json.loads(json.dumps(second["table"])) == first["table"]
    # Other arguments in the same folder are refused, not mixed in.
    with pytest.raises(ValueError, match="seeds"):
        example.main(argv + ["--seeds", "2"])

