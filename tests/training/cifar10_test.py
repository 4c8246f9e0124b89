"""A short Selfie pretraining on the real CIFAR-10 learns the pretext task."""

from conftest import load_example


def test_short_pretraining_beats_chance_on_cifar10(tfds_data_dir, tmp_path):
    example = load_example("pretrain_cifar10")
    results = example.main(
        [
            "--steps", "200",
            "--width", "0.125",
            "--eval-images", "256",
            "--knn-train-images", "250",
            "--data-dir", tfds_data_dir,
            "--output-dir", str(tmp_path),
        ]
    )
    # The default formulation: candidates from the whole test batch of 256
    # images, 4 decoder patches each.
    chance = results["chance_patch_accuracy"]
    assert chance == 1 / 1024
    before = results["test_before"]["patch_accuracy"]
    after = results["test_after"]["patch_accuracy"]
    # 256 images x 4 positions; 20x chance is far outside the noise of a
    # model that learned nothing.
    assert before < 5 * chance
    assert after > 20 * chance, results
    # What pretraining bought: the pretrained model reads its context
    # (a random one does not), and both P's kNN accuracies are reported.
    gain = results["context_gain"]
    assert gain["pretrained"]["context_gain"] > 0.02, gain
    assert abs(gain["random"]["context_gain"]) < 0.01, gain
    for name in ("pretrained", "random"):
        knn = results["knn_accuracy"][name]
        assert set(knn) == {"moving", "recalibrated"}
        assert all(0.05 < value < 1.0 for value in knn.values())
    assert (tmp_path / "selfie_pretrainer.keras").is_file()
    assert (tmp_path / "resnet50_from_selfie.keras").is_file()
