"""A short Selfie pretraining on the real CIFAR-10 learns the pretext task."""

from conftest import load_example


def test_short_pretraining_beats_chance_on_cifar10(tfds_data_dir, tmp_path):
    example = load_example("pretrain_cifar10")
    results = example.main(
        [
            "--steps", "300",
            "--width", "0.125",
            "--eval-images", "2048",
            "--data-dir", tfds_data_dir,
            "--output-dir", str(tmp_path),
        ]
    )
    chance = results["chance_patch_accuracy"]
    assert chance == 0.25
    before = results["test_before"]["patch_accuracy"]
    after = results["test_after"]["patch_accuracy"]
    # 2048 images x 4 positions: the standard error of an accuracy near
    # 0.25 is 0.005, so 0.30 is ten standard errors above chance.
    assert abs(before - chance) < 0.03
    assert after > 0.30, results
    assert (tmp_path / "selfie_pretrainer.keras").is_file()
    assert (tmp_path / "resnet50_from_selfie.keras").is_file()
