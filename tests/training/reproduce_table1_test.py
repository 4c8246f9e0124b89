"""The Table 1 reproduction runs end to end (smoke preset, real CIFAR-10)."""

import json

from conftest import load_example


def test_reproduce_table1_smoke(tfds_data_dir, tmp_path):
    example = load_example("reproduce_table1")
    returned = example.main(
        [
            "--smoke",
            "--data-dir", tfds_data_dir,
            "--output-dir", str(tmp_path),
            "--verbose", "0",
        ]
    )
    table_path = tmp_path / "table1.md"
    json_path = tmp_path / "results.json"
    assert table_path.is_file() and json_path.is_file()
    results = json.loads(json_path.read_text())
    assert results["table"] == json.loads(json.dumps(returned["table"]))
    fractions = example.PRESETS["smoke"]["fractions"]
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
    assert len(curve) == example.PRESETS["smoke"]["pretrain_epochs"]
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
