"""The `keras-selfie` command line on a folder of 24 PNGs (two classes).

Every subcommand runs with the tiny model, and the files it writes are read
back. Pretraining runs as `python -m keras_selfie` in a subprocess (the
entry point, and a run killed with SIGKILL); the other subcommands run in
this process through `keras_selfie.cli.main`, which the console script
`keras-selfie` (setup.cfg) and `python -m keras_selfie` both call, without
a new interpreter's start each.
"""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from conftest import REPO
from conftest import TINY
from conftest import TINY_FLAGS

import keras_selfie
from keras_selfie import cli

EPOCHS, STEPS = 3, 2


def run_cli(*args, timeout=240):
    """Runs `python -m keras_selfie ARGS`; returns the completed process."""
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, "-m", "keras_selfie", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env=env,
    )


def run_main(capsys, *args):
    """Runs `keras_selfie.cli.main(ARGS)` here; returns what it printed."""
    status = cli.main([str(arg) for arg in args])
    stdout = capsys.readouterr().out
    assert status == 0, stdout[-3000:]
    return stdout


def check_ok(process):
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[
        -3000:
    ]
    return process.stdout


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """24 32x32 PNGs in two class folders: dark and light noise."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for label, mean in (("dark", 60), ("light", 190)):
        (folder / label).mkdir()
        for i in range(12):
            image = np.clip(rng.normal(mean, 40, (32, 32, 3)), 0, 255)
            Image.fromarray(image.astype("uint8")).save(
                folder / label / f"{i}.png"
            )
    return folder


def pretrain_args(image_folder, output_dir):
    return [
        "pretrain", "--image-folder", image_folder, *TINY_FLAGS,
        "--epochs", EPOCHS, "--steps-per-epoch", STEPS, "--batch-size", 8,
        "--seed", 0, "--deterministic", "--run-eagerly", "--knn-every", 1,
        "--knn-train-images", 16, "--knn-test-images", 8,
        "--output-dir", output_dir, "--verbose", 2,
    ]


@pytest.fixture(scope="module")
def pretrained_run(image_folder, tmp_path_factory):
    """One uninterrupted tiny pretraining, shared by the tests below."""
    output_dir = tmp_path_factory.mktemp("run")
    stdout = check_ok(run_cli(*pretrain_args(image_folder, output_dir)))
    return output_dir, stdout


def load_pretrainer(path):
    return keras.models.load_model(path)


@pytest.fixture(scope="module")
def pretrainer(pretrained_run):
    """The uninterrupted run's pretrainer, loaded once for the tests that
    read it (none changes it)."""
    output_dir, _ = pretrained_run
    return load_pretrainer(output_dir / "selfie_pretrainer.keras")


def test_pretrain_writes_model_history_and_curves(pretrained_run, pretrainer):
    output_dir, stdout = pretrained_run
    assert "Starting a new run" in stdout
    assert isinstance(pretrainer, keras_selfie.SelfiePretrainer)
    for key, value in TINY.items():
        expected = (value, value) if key == "image_size" else value
        assert getattr(pretrainer, key) == expected, key
    assert int(pretrainer.optimizer.iterations.numpy()) == EPOCHS * STEPS
    lines = (output_dir / "history.csv").read_text().splitlines()
    assert lines[0].split(",") == [
        "epoch", "knn_accuracy", "loss", "patch_accuracy"
    ]
    assert [line.split(",")[0] for line in lines[1:]] == ["0", "1", "2"]
    history = json.loads((output_dir / "history.json").read_text())
    assert history["epoch"] == [0, 1, 2]
    assert all(0 <= value <= 1 for value in history["knn_accuracy"])
    assert all(0 <= value <= 1 for value in history["patch_accuracy"])
    assert all(np.isfinite(history["loss"]))
    png = (output_dir / "training_curves.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    assert (output_dir / "checkpoints" / "last.keras").is_file()
    assert not (output_dir / "backup").exists()  # deleted when done
    for name in ("selfie_pretrainer.keras", "history.csv",
                 "training_curves.png"):
        assert f"Written: {output_dir / name}" in stdout


def test_resume_after_sigkill_matches_uninterrupted_run(
    image_folder, pretrained_run, pretrainer, tmp_path
):
    """Killed inside epoch 2, the rerun resumes there and ends bit-equal.

    Equality is exact: the backup holds weights, optimizer state (the step
    counter and so the learning rate), epoch and the SeedGenerator states
    (masked positions, dropout); the input pipeline is seeded and skips the
    batches of the backed-up epochs; `--deterministic` makes TensorFlow's
    ops deterministic on CPU.
    """
    reference_dir, _ = pretrained_run
    args = pretrain_args(image_folder, tmp_path)
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_selfie", *map(str, args)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    metadata = tmp_path / "backup" / "training_metadata.json"
    # The checkpoint is written after the backup at the end of epoch 1, so
    # once both exist the run is inside epoch 2.
    checkpoint = tmp_path / "checkpoints" / "last.keras"
    deadline = time.time() + 180
    try:
        while not (metadata.exists() and checkpoint.exists()):
            assert process.poll() is None, "the run ended before the kill"
            assert time.time() < deadline, "no backup within 180 s"
            time.sleep(0.1)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=30)
    backed_up = json.loads(metadata.read_text())["epoch"]
    assert backed_up == 1

    stdout = check_ok(run_cli(*args))
    assert (f"Resuming from the backup in {tmp_path / 'backup'}: epoch 1 "
            f"of {EPOCHS} done, continuing at step {STEPS + 1}") in stdout
    assert "Epoch 1/3" not in stdout and "Epoch 2/3" in stdout
    lines = (tmp_path / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["0", "1", "2"]
    resumed = load_pretrainer(tmp_path / "selfie_pretrainer.keras")
    assert int(resumed.optimizer.iterations.numpy()) == EPOCHS * STEPS
    for ours, theirs in zip(resumed.weights, pretrainer.weights):
        np.testing.assert_array_equal(
            ours.numpy(), theirs.numpy(), err_msg=ours.path
        )
    # The logged metrics of the resumed epochs equal the reference's too.
    assert lines == (reference_dir / "history.csv").read_text().splitlines()


def test_finetune_writes_model_and_accuracy(image_folder, pretrained_run,
                                            tmp_path, capsys):
    output_dir, _ = pretrained_run
    stdout = run_main(
        capsys, "finetune", "--pretrained", output_dir / "selfie_pretrainer.keras",
        "--image-folder", image_folder, "--label-fraction", 0.5,
        "--epochs", 1, "--steps-per-epoch", 2, "--batch-size", 8,
        "--run-eagerly", "--output-dir", tmp_path, "--verbose", 0,
    )
    results = json.loads((tmp_path / "results.json").read_text())
    assert 0 <= results["test_accuracy"] <= 1
    assert f"test accuracy {results['test_accuracy']:.4f}" in stdout
    # 20 training images (4 of 24 held out), half of each class.
    assert results["num_labeled_images"] == 10
    assert results["num_classes"] == 2 and results["init"] == "selfie"
    model = keras.models.load_model(tmp_path / "finetuned_resnet50.keras")
    assert model.output_shape == (None, 2)


def test_finetune_from_scratch_in_process(image_folder, tmp_path):
    status = cli.main([
        "finetune", "--from-scratch", "--width", "0.125",
        "--image-folder", str(image_folder), "--label-fraction", "0.5",
        "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "4",
        "--run-eagerly", "--output-dir", str(tmp_path), "--verbose", "0",
    ])
    assert status == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["init"] == "scratch" and results["pretrained"] is None
    assert 0 <= results["test_accuracy"] <= 1


def test_evaluate_writes_knn_and_probe_accuracy(image_folder, pretrained_run,
                                                tmp_path, capsys):
    output_dir, _ = pretrained_run
    output = tmp_path / "evaluation.json"
    stdout = run_main(
        capsys,
        "evaluate", "--pretrained", output_dir / "selfie_pretrainer.keras",
        "--image-folder", image_folder, "--method", "both",
        "--probe-epochs", 2, "--output", output,
    )
    results = json.loads(output.read_text())
    assert 0 <= results["knn_accuracy"] <= 1
    assert 0 <= results["linear_probe_accuracy"] <= 1
    assert results["num_train_images"] == 20
    assert results["num_test_images"] == 4
    assert results["k"] == 20
    assert f"knn accuracy: {results['knn_accuracy']:.4f}" in stdout


def test_export_resnet50_holds_the_patch_network_weights(
    pretrained_run, pretrainer, tmp_path, capsys
):
    output_dir, _ = pretrained_run
    output = tmp_path / "resnet.keras"
    run_main(
        capsys,
        "export", "--pretrained", output_dir / "selfie_pretrainer.keras",
        "--what", "resnet50", "--classes", 7, "--output", output,
    )
    resnet = keras.models.load_model(output)
    assert resnet.output_shape == (None, 7)
    copied = 0
    for layer in pretrainer.patch_network.layers:
        if not layer.weights:
            continue
        for ours, theirs in zip(layer.weights,
                                resnet.get_layer(layer.name).weights):
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
            copied += 1
    assert copied > 100


@pytest.fixture(scope="module")
def exported_patch_network(pretrained_run, tmp_path_factory):
    """The pretrained run's P, exported in process to a .keras file."""
    output_dir, _ = pretrained_run
    output = tmp_path_factory.mktemp("export") / "p.keras"
    assert cli.main([
        "export", "--pretrained", str(output_dir / "selfie_pretrainer.keras"),
        "--what", "patch-network", "--output", str(output),
    ]) == 0
    return output


def test_export_patch_network_computes_the_pretrainer_s_features(
    pretrainer, exported_patch_network
):
    network = keras.models.load_model(exported_patch_network)
    assert network.output_shape == (None, 128)
    images = np.random.default_rng(1).integers(
        0, 256, (2, 32, 32, 3), dtype=np.uint8
    )
    # On patches: the pretrainer's own patch features (P on each of the
    # 16 patches of every image, scaled to [0, 1]).
    patches = keras_selfie.layers.PatchExtractor(8)(images / 255.0)
    ours = network.predict(
        keras.ops.reshape(patches, (-1, 8, 8, 3)), verbose=0
    ).reshape(2, 16, 128)
    expected = keras.ops.convert_to_numpy(
        pretrainer.patch_features(images, training=False)
    )
    # Float32 rounding, which the order of the sums (graph or eager, the
    # kernels oneDNN picks) changes, scales with the largest features
    # (~100 after training): measured up to 1.6e-5 on features of 0.7.
    atol = 1e-6 * np.abs(expected).max()
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=atol)
    # On whole images, as evaluation and transfer use it.
    np.testing.assert_allclose(
        network.predict(images / 255.0, verbose=0),
        keras.ops.convert_to_numpy(
            pretrainer.patch_network(images / 255.0, training=False)
        ),
        rtol=1e-5, atol=atol,
    )


def test_visualize_writes_png(image_folder, pretrained_run, tmp_path,
                              capsys):
    output_dir, _ = pretrained_run
    output = tmp_path / "figure.png"
    stdout = run_main(
        capsys,
        "visualize", "--pretrained", output_dir / "selfie_pretrainer.keras",
        "--image-folder", image_folder, "--num-images", 4,
        "--image-index", 1, "--position-index", 2, "--output", output,
    )
    assert output.read_bytes().startswith(b"\x89PNG")
    assert f"Written: {output}" in stdout


def test_help_of_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    listing = capsys.readouterr().out
    for command in ("pretrain", "finetune", "evaluate", "visualize",
                    "export"):
        assert command in listing
    flags = {
        "pretrain": ["--dataset", "--image-folder", "--epochs",
                     "--batch-size", "--strategy", "TF_CONFIG",
                     "--output-dir", "--no-resume", "--backup-every-steps",
                     "--knn-every", "--deterministic"],
        "finetune": ["--pretrained", "--from-scratch", "--label-fraction"],
        "evaluate": ["--pretrained", "--method", "--k", "--probe-epochs"],
        "visualize": ["--pretrained", "--image-index", "--position-index",
                      "--output"],
        "export": ["--pretrained", "--what", "resnet50", "patch-network",
                   "--classes"],
    }
    for command, expected in flags.items():
        with pytest.raises(SystemExit) as exit_info:
            cli.main([command, "--help"])
        assert exit_info.value.code == 0
        text = capsys.readouterr().out
        for flag in expected:
            assert flag in text, (command, flag)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["pretrain", "--epochs", "0"],
         "argument --epochs: must be a positive integer, got '0'"),
        (["finetune", "--label-fraction", "1.5"],
         "argument --label-fraction: must be a number in (0, 1], got '1.5'"),
        (["export", "--what", "vgg", "--pretrained", "x.keras"],
         "argument --what: invalid choice: 'vgg'"),
        (["pretrain", "--strategy", "gpus"],
         "argument --strategy: invalid choice: 'gpus'"),
    ],
)
def test_bad_flag_values_exit_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_errors_found_after_parsing_exit_with_a_message(
    image_folder, exported_patch_network, tmp_path, capsys
):
    not_a_pretrainer = exported_patch_network
    cases = [
        (["export", "--pretrained", str(not_a_pretrainer)],
         "holds a model of class 'Functional', not a `keras_selfie.Pretrainer`"),
        (["evaluate", "--pretrained", str(tmp_path / "missing.keras")],
         "missing.keras' (no such file)"),
        (["finetune", "--image-folder", str(image_folder)],
         "give --pretrained FILE"),
        (["pretrain", "--image-folder", str(tmp_path / "nowhere")],
         "Argument `directory` must be an existing folder"),
        (["pretrain", "--image-folder", str(image_folder),
          "--output-dir", str(tmp_path / "run")],
         "`batch_size` must not exceed the number of images (24). "
         "Received: batch_size=64"),
        (["pretrain", "--image-folder", str(image_folder), "--patch-size",
          "5", "--batch-size", "8", "--output-dir", str(tmp_path / "run")],
         "patch_size"),
    ]
    for argv, message in cases:
        assert cli.main(argv) == 2, argv
        error = capsys.readouterr().err
        assert error.startswith(f"keras-selfie {argv[0]}: error:"), error
        assert message in error, error
