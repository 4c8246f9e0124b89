"""The method comparison runs end to end (smoke preset, real CIFAR-10).

One run of `examples/compare_methods.py` on two methods, a classification
task (rotation) and a reconstruction task (super-resolution), grown from
one method to two as a newly registered method would be; then started
again as after a kill. Its figures are checked against what they are made
of: the table's cells against `results.json`, each gain as pretrained minus
random P, the fine-tuning mean and std against the seeds' runs.
"""

import json
import os
import time

import numpy as np
import pytest
from reproduce_table1_test import assert_share_of

import keras_selfie
from conftest import load_example

METHODS = ["rotation", "super_resolution"]


@pytest.fixture
def spies(monkeypatch):
    """Counts the calls of every stage's expensive function."""
    calls = {}

    def spy(owner, name):
        original = getattr(owner, name)

        def counted(*args, **kwargs):
            calls[name] = calls.get(name, 0) + 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)

    return spy, calls


def test_compare_methods_smoke(tfds_data_dir, tmp_path, spies):
    example = load_example("compare_methods")
    spy, calls = spies
    for owner, name in ((keras_selfie.training, "run_pretraining"),
                        (example.protocol, "frozen_figures"),
                        (example.protocol, "finetune_run"),
                        (example, "pretext_figure")):
        spy(owner, name)
    argv = ["--preset", "smoke", "--data-dir", tfds_data_dir,
            "--output-dir", str(tmp_path), "--verbose", "0"]
    args = example.parse_args(argv)
    seeds = args.seeds

    # One method, then a second one added to the same folder: only the
    # second is run.
    start = time.time()
    example.main(argv + ["--methods", METHODS[0]])
    assert [row["method"] for row in json.loads(
        (tmp_path / "results.json").read_text())["table"]
    ] in (["scratch", METHODS[0]], [METHODS[0], "scratch"])
    page = tmp_path / "docs" / "ZOO.md"
    returned = example.main(argv + ["--methods", *METHODS,
                                    "--page", str(page)])
    elapsed = time.time() - start
    assert calls == {
        "run_pretraining": 2,
        # Pretrained P of each method, random P once (both methods start
        # from the same P).
        "frozen_figures": 3,
        "finetune_run": 3 * seeds,
        "pretext_figure": 2,
    }
    results = json.loads((tmp_path / "results.json").read_text())
    assert results == json.loads(json.dumps(returned))
    assert (tmp_path / "zoo.png").read_bytes().startswith(b"\x89PNG")
    table = (tmp_path / "zoo.md").read_text()
    # The page elsewhere: the same, its link to the chart relative to it.
    assert "](zoo.png)" in table
    assert page.read_text() == table.replace("](zoo.png)", "](../zoo.png)")
    rows = results["table"]

    # Sorted by fine-tuning accuracy; every method and scratch.
    assert sorted(row["method"] for row in rows) == sorted(
        METHODS + ["scratch"])
    means = [row["finetune_mean"] for row in rows]
    assert means == sorted(means, reverse=True)
    scratch = next(row for row in rows if row["method"] == "scratch")
    scratch_runs = results["scratch"]
    assert [run["seed"] for run in scratch_runs] == list(range(seeds))
    test_images = args.test_images
    for row in rows:
        runs = (scratch_runs if row["method"] == "scratch"
                else results["methods"][row["method"]]["finetune"])
        accuracies = [run["accuracy"] for run in runs]
        assert_share_of(test_images, *accuracies)
        # Mean and std of the seeds, in percent (`test_table_rows`: of
        # several seeds).
        assert row["finetune_accuracies"] == accuracies
        assert row["finetune_mean"] == pytest.approx(
            100 * np.mean(accuracies))
        assert row["vs_scratch"] == pytest.approx(
            row["finetune_mean"] - scratch["finetune_mean"])
        for run, reference in zip(runs, scratch_runs):
            # Each seed's subset: the same images for every row.
            assert run["seed"] == reference["seed"]
            assert run["subset_digest"] == reference["subset_digest"]
            assert run["num_labeled_images"] == (
                reference["num_labeled_images"])
            assert run["steps"] == (args.finetune_epochs
                                    * args.finetune_steps_per_epoch)

    # The main table: its header, then one line per row.
    lines = table.split("\n\n")
    lines = next(block for block in lines
                 if block.startswith("| method | pretext")).splitlines()
    assert len(lines) == 2 + len(rows)
    del lines[1]  # |---|...
    for line, row in zip(lines[1:], rows):
        method = row["method"]
        cells = f"{row['finetune_mean']:.1f} +- {row['finetune_std']:.1f}"
        cells += f" | {row['vs_scratch']:+.1f} |"
        assert line.endswith(cells), (line, cells)
        if method == "scratch":
            continue
        entry = results["methods"][method]
        pretrained = entry["frozen"]["pretrained"]
        random_p = results["random_p"][entry["frozen"]["random_p"]]
        gains = []
        for metric in ("linear_probe", "knn"):
            key = f"{metric}_accuracy"
            # Each P at its better batch-norm setting.
            for figures in (pretrained, random_p):
                assert_share_of(test_images, figures[key])
                assert figures[key] == max(
                    setting[key] for setting in figures["settings"].values())
            assert row[metric]["pretrained"] == pretrained[key]
            assert row[metric]["random"] == random_p[key]
            assert row[metric]["delta"] == pytest.approx(
                100 * (pretrained[key] - random_p[key]))
            gains.append(
                f"{row[metric]['delta']:+.1f} "
                f"({100 * pretrained[key]:.1f} vs {100 * random_p[key]:.1f})")
        pretext = entry["pretext"]
        assert row["pretext"] == pretext
        pretraining = entry["pretraining"]
        assert line.startswith(
            f"| {method} | {pretext['metric']} {pretext['value']:.4f} | "
            f"{pretext['baseline']:.4f} "
            f"{pretext['trivial_answer'] or pretext['baseline_kind']} | ")
        assert f" | {row['images_per_second']:.0f} | " + " | ".join(
            gains) + " | " in line
        # One budget: the same images seen by every method; the step time
        # is the batch over the median step, the first step left out.
        assert pretraining["images_seen"] == (
            args.epochs * args.steps_per_epoch * args.batch_size)
        assert pretraining["timed_steps"] == (
            args.epochs * args.steps_per_epoch - 1)
        assert row["images_per_second"] == pytest.approx(
            args.batch_size / pretraining["median_step_seconds"])
        assert entry["settings"]["learning_rate"] == (
            example.METHOD_SETTINGS[method]["learning_rate"])

    # The pretext figures beside their references: rotation's accuracy
    # over 4 rotations of each image (chance 1/4), super-resolution's
    # error beside that of the bicubic input handed back.
    rotation = results["methods"]["rotation"]["pretext"]
    assert (rotation["metric"], rotation["baseline_kind"]) == (
        "pretext_accuracy", "chance")
    assert rotation["baseline"] == 0.25
    assert_share_of(4 * args.pretext_images, rotation["value"])
    resolution = results["methods"]["super_resolution"]["pretext"]
    assert (resolution["metric"], resolution["baseline_kind"],
            resolution["direction"]) == (
        "reconstruction_error", "trivial", "min")
    assert 0 < resolution["baseline"] < 1

    # Random P is each method's own starting point: the same seed's
    # untrained model.
    untrained = example.build(args, "rotation",
                              example.settings_of("rotation", args))
    assert results["methods"]["rotation"]["frozen"]["random_p"] == (
        example.weights_digest(untrained.feature_extractor()))
    assert results["machine"]["cpu_count"] == os.cpu_count()
    assert results["estimated_seconds"] == example.estimate_seconds(
        args, METHODS)
    assert 0 < results["wall_seconds"] <= elapsed + 0.1
    assert_continues_where_it_stopped(example, argv + ["--methods", *METHODS],
                                      tmp_path, results, calls)


def assert_continues_where_it_stopped(example, argv, tmp_path, first,
                                      calls):
    path = tmp_path / "results.json"
    # Finished: nothing is run again.
    calls.clear()
    start = time.time()
    second = example.main(argv)
    elapsed = time.time() - start
    assert calls == {}
    assert second["methods"] == first["methods"]
    assert second["scratch"] == first["scratch"]
    assert json.loads(json.dumps(second["table"])) == first["table"]
    # The wall time adds this run's to the first's.
    assert second["wall_seconds"] - first["wall_seconds"] == pytest.approx(
        elapsed, abs=1.0)
    # Killed before its last stage: only that stage is run, from the
    # saved model, to the same figure.
    progress = json.loads(path.read_text())
    dropped = progress["methods"]["super_resolution"].pop("pretext")
    path.write_text(json.dumps(progress))
    third = example.main(argv)
    assert calls == {"pretext_figure": 1}
    redone = third["methods"]["super_resolution"]["pretext"]
    assert redone.keys() == dropped.keys()
    for key, value in dropped.items():
        assert redone[key] == (
            value if isinstance(value, str) else pytest.approx(value)), key
    # Other arguments in the same folder are refused, not mixed in.
    with pytest.raises(ValueError, match="seeds"):
        example.main(argv + ["--seeds", "3"])


def test_table_rows():
    """The table from a results file with three seeds: means and sample
    standard deviations of the seeds, gains over random P and scratch,
    unfinished and diverged methods left out (the latter named), rows
    sorted by fine-tuning accuracy."""
    example = load_example("compare_methods")

    def method(probe, knn, accuracies, random_p="r"):
        return {
            "pretraining": {"images_per_second": 100.0},
            "pretext": {"metric": "pretext_accuracy", "value": 0.5,
                        "baseline": 0.25, "baseline_kind": "chance",
                        "trivial_answer": None},
            "frozen": {"pretrained": {"linear_probe_accuracy": probe,
                                      "knn_accuracy": knn},
                       "random_p": random_p},
            "finetune": [{"seed": seed, "accuracy": accuracy}
                         for seed, accuracy in enumerate(accuracies)],
        }

    progress = {
        "methods": {
            "a": method(0.4, 0.3, [0.30, 0.32, 0.34]),
            "b": method(0.3, 0.5, [0.20, 0.25, 0.30]),
            "unfinished": method(0.9, 0.9, [0.9, 0.9]),
            "diverged": {"finetune": [], "diverged": (
                "The loss became nan at batch 3 of an epoch (step 3): "
                "training diverged and was stopped. Lower the rate.")},
        },
        "random_p": {"r": {"linear_probe_accuracy": 0.35,
                           "knn_accuracy": 0.32}},
        "scratch": [{"seed": seed, "accuracy": accuracy}
                    for seed, accuracy in enumerate([0.28, 0.29, 0.33])],
    }
    rows = example.table_rows(progress, seeds=3)
    assert [row["method"] for row in rows] == ["a", "scratch", "b"]
    a, scratch, b = rows
    assert (a["finetune_mean"], a["finetune_std"]) == pytest.approx((32, 2))
    assert (b["finetune_mean"], b["finetune_std"]) == pytest.approx((25, 5))
    assert (scratch["finetune_mean"], scratch["finetune_std"]) == (
        pytest.approx((30, 7 ** 0.5)))
    assert (a["vs_scratch"], b["vs_scratch"], scratch["vs_scratch"]) == (
        pytest.approx((2, -5, 0)))
    assert (a["linear_probe"]["delta"], a["knn"]["delta"]) == (
        pytest.approx((5, -2)))
    assert example.make_table(rows).splitlines()[2:] == [
        "| a | pretext_accuracy 0.5000 | 0.2500 chance | 100 | "
        "+5.0 (40.0 vs 35.0) | -2.0 (30.0 vs 32.0) | 32.0 +- 2.0 | +2.0 |",
        "| **scratch** (no pretraining) | - | - | - | - | - | 30.0 +- 2.6 "
        "| +0.0 |",
        "| b | pretext_accuracy 0.5000 | 0.2500 chance | 100 | "
        "-5.0 (30.0 vs 35.0) | +18.0 (50.0 vs 32.0) | 25.0 +- 5.0 | -5.0 |",
    ]
    assert example.diverged_line(progress) == (
        "Pretraining diverged (left out of the table): diverged (The loss "
        "became nan at batch 3 of an epoch (step 3): training diverged and "
        "was stopped).\n\n")


def test_written_page_keeps_the_findings_written_by_hand(tmp_path):
    example = load_example("compare_methods")
    page = tmp_path / "ZOO.md"
    example.write_page(page, "# Table\n\nfirst run\n")
    assert page.read_text() == "# Table\n\nfirst run\n"
    findings = f"{example.FINDINGS_MARKER}\n## Findings\n\nExemplar wins.\n"
    page.write_text(page.read_text() + "\n" + findings)
    example.write_page(page, "# Table\n\nsecond run\n")
    assert page.read_text() == "# Table\n\nsecond run\n\n" + findings
    # Without the marker, the page is the report alone.
    other = tmp_path / "other.md"
    other.write_text("old text\n")
    example.write_page(other, "new\n")
    assert other.read_text() == "new\n"
