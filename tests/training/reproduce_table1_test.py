"""The Table 1 reproduction runs end to end (tiny preset, real CIFAR-10)."""

import json

import pytest

from conftest import load_example
from keras_selfie import presets


def test_reproduce_table1_smoke(tfds_data_dir, tmp_path):
    example = load_example("reproduce_table1")
    argv = [
        "--smoke",
        "--data-dir", tfds_data_dir,
        "--output-dir", str(tmp_path),
        "--verbose", "0",
    ]
    returned = example.main(argv)
    table_path = tmp_path / "table1.md"
    json_path = tmp_path / "results.json"
    assert table_path.is_file() and json_path.is_file()
    results = json.loads(json_path.read_text())
    assert results["table"] == json.loads(json.dumps(returned["table"]))
    fractions = presets.get("tiny")["evaluation"]["fractions"]
    table = table_path.read_text()

    # The paper's row, as copied from PAPER.md.
    assert example.PAPER_TABLE1_CIFAR10[0.05]["supervised"] == (75.9, 0.7)
    assert example.PAPER_TABLE1_CIFAR10[1.0]["selfie"] == (95.7, 0.1)
    assert "75.9 +- 0.7" in table and "79.3 +- 1.0" in table
    assert "80.3 +- 0.3" in table

    rows = {row["fraction"]: row for row in results["table"]}
    assert sorted(rows) == sorted(fractions)
    for fraction in fractions:
        row = rows[fraction]
        assert f"| {fraction * 100:g}% |" in table
        assert row["paper"] is not None
        for key in ("scratch_mean", "pretrained_mean"):
            assert 0.0 <= row[key] <= 100.0  # percent
        for accuracy in row["scratch_accuracies"] + row["pretrained_accuracies"]:
            assert 0.0 <= accuracy <= 1.0
        runs = [r for r in results["runs"] if r["fraction"] == fraction]
        assert {r["init"] for r in runs} == {"scratch", "pretrained"}
        for seed in {r["seed"] for r in runs}:
            pair = [r for r in runs if r["seed"] == seed]
            assert len(pair) == 2
            # Scratch and pretrained saw the same labeled images.
            assert len({r["num_labeled_images"] for r in pair}) == 1
            assert len({r["subset_digest"] for r in pair}) == 1
            # CIFAR-10 has 5,000 images per class; rounding is per class.
            assert pair[0]["num_labeled_images"] == 10 * round(
                fraction * 5000
            )

    # The pretext curve and the frozen-feature comparison are recorded.
    curve = results["pretraining"]["curve"]
    assert len(curve) == presets.get("tiny")["pretraining"]["epochs"]
    assert all(
        {"loss", "patch_accuracy", "knn_accuracy"} <= set(point)
        for point in curve
    )
    assert curve[-1]["knn_accuracy"] is not None
    for name in ("pretrained", "random"):
        for key in ("knn_accuracy", "linear_probe_accuracy"):
            assert 0.0 <= results["frozen_features"][name][key] <= 1.0
    assert results["machine"]["cpu_count"] >= 1
    assert results["wall_seconds"] > 0
    assert_continues_where_it_stopped(example, argv, tmp_path, results)


def assert_continues_where_it_stopped(example, argv, tmp_path, first):
    """Started again with the same arguments, the run keeps every finished
    stage and run and does only what is missing."""
    path = tmp_path / "results.json"
    progress = json.loads(path.read_text())
    # As if killed before the last fine-tuning run.
    dropped = progress["runs"].pop()
    path.write_text(json.dumps(progress))
    second = example.main(argv)
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

