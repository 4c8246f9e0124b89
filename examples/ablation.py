"""What each change to Selfie's formulation buys, side by side.

Every row pretrains a `SelfiePretrainer` on the unlabeled CIFAR-10 train
split with the same budget, seed and data order (the `cpu` preset of
`examples/reproduce_table1.py`: 1,200 steps of batch 64, width 0.25) and
changes only its formulation; then measures, on held-out images, the
pretext patch accuracy, the context gain, the feature health, and the
linear probe and kNN of pretrained P minus random P (each P at its better
batch-norm setting). Each row is one `reproduce_table1.py` run without
fine-tuning, in its own folder: a row that finished is not run again, and
a killed row resumes from its last pretraining epoch.

    python examples/ablation.py --output-dir docs/results/ablation
    python examples/ablation.py --rows paper context    # some rows only
    python examples/ablation.py --smoke                 # ~5 minutes
    python examples/ablation.py --table-only --output-dir docs/results/ablation

The table goes to `ablation.md` in `--output-dir`.
"""

import argparse
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import reproduce_table1  # noqa: E402

# Row name -> (what it changes, SelfiePretrainer arguments). The order is
# the order of the table.
ROWS = {
    "paper": (
        "the paper: v_j = u + PE(j), raw dot products with the M patches of "
        "the image",
        dict(query="paper"),
    ),
    "context": (
        "+ context query: u0 + PE(j) per position through A, encoder "
        "patches with their positions",
        dict(query="context", distractors="image", similarity="dot"),
    ),
    "context_batch": (
        "+ batch distractors (B*M candidates), cosine / 0.1",
        dict(query="context", distractors="batch", similarity="cosine",
             temperature=0.1),
    ),
    "context_batch_jitter": (
        "+ a random colour distortion for every patch (guard against "
        "matching patches by their colours)",
        dict(query="context", distractors="batch", similarity="cosine",
             temperature=0.1, patch_color_jitter=True),
    ),
    "context_batch_masked": (
        "+ the visible patches' features from P on the whole image with "
        "the masked patches blanked out (MAE/BEiT-style)",
        dict(query="context", distractors="batch", similarity="cosine",
             temperature=0.1, context_view="masked_image"),
    ),
    "context_batch_masked_both": (
        "+ the candidates' features also from P on the whole image, with "
        "the visible patches blanked out",
        dict(query="context", distractors="batch", similarity="cosine",
             temperature=0.1, context_view="masked_image",
             target_view="masked_image"),
    ),
    "context_batch_head": (
        "+ a projection head (MLP) between P and the candidates' scores, "
        "dropped at transfer (SimCLR)",
        dict(query="context", distractors="batch", similarity="cosine",
             temperature=0.1, projection_head=True),
    ),
    "paper_batch": (
        "the paper's query with batch distractors, cosine / 0.1 (what the "
        "context query adds under batch distractors)",
        dict(query="paper", distractors="batch", similarity="cosine",
             temperature=0.1),
    ),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", nargs="+", choices=list(ROWS),
                        default=list(ROWS))
    parser.add_argument("--smoke", action="store_true",
                        help="the smoke preset: checks that it runs")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output-dir", default="runs/ablation")
    parser.add_argument("--verbose", type=int, default=2)
    parser.add_argument("--table-only", action="store_true",
                        help="run nothing: write the table of the rows "
                        "whose results.json exists in --output-dir")
    return parser.parse_args(argv)


def row_arguments(settings):
    """Command-line flags of `reproduce_table1.py` for a row's settings."""
    flags = []
    for key, value in settings.items():
        flag = "--" + key.replace("_", "-")
        flags += [flag] if value is True else [flag, str(value)]
    return flags


def run_row(name, args):
    settings = ROWS[name][1]
    argv = [
        "--preset", "tiny" if args.smoke else "cpu",
        "--fractions",  # no fine-tuning
        "--output-dir", str(pathlib.Path(args.output_dir) / name),
        "--verbose", str(args.verbose),
        *row_arguments(settings),
    ]
    if args.data_dir:
        argv += ["--data-dir", args.data_dir]
    print(f"\n==== {name}: {ROWS[name][0]}")
    return reproduce_table1.main(argv)


def table_row(name, results):
    frozen = results["frozen_features"]
    pre, rnd = frozen["pretrained"], frozen["random"]
    own = pre["context_gain"][results["pretraining"]["formulation"][
        "distractors"]]
    image = pre["context_gain"]["image"]
    health = pre["feature_health"]
    curve = results["pretraining"]["curve"]
    return (
        f"| {name} | {curve[-1]['patch_accuracy']:.3f} "
        f"| {own['patch_accuracy']:.3f} ({own['distractors']}) "
        f"| {own['context_gain'] * 100:+.1f} "
        f"| {image['context_gain'] * 100:+.1f} "
        f"| {health['effective_rank']:.1f} / "
        f"{rnd['feature_health']['effective_rank']:.1f} "
        f"| {health['relative_std']:.2f} / "
        f"{rnd['feature_health']['relative_std']:.2f} "
        f"| {pre['linear_probe_accuracy'] * 100:.1f} "
        f"({pre['linear_probe_setting']}) "
        f"| {rnd['linear_probe_accuracy'] * 100:.1f} "
        f"({rnd['linear_probe_setting']}) "
        f"| {(pre['linear_probe_accuracy'] - rnd['linear_probe_accuracy']) * 100:+.1f} "
        f"| {pre['knn_accuracy'] * 100:.1f} ({pre['knn_setting']}) "
        f"| {rnd['knn_accuracy'] * 100:.1f} ({rnd['knn_setting']}) "
        f"| {(pre['knn_accuracy'] - rnd['knn_accuracy']) * 100:+.1f} "
        f"| {results['wall_seconds'] / 60:.0f} |"
    )


HEADER = (
    "| row | train patch acc. | test patch acc. (candidates) "
    "| context gain (own cand.) | context gain (image cand.) "
    "| eff. rank pre / rnd | rel. std pre / rnd "
    "| probe pre (BN) | probe rnd (BN) | probe delta "
    "| kNN pre (BN) | kNN rnd (BN) | kNN delta | minutes |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def main(argv=None):
    args = parse_args(argv)
    if args.table_only:
        folder = pathlib.Path(args.output_dir)
        results = {
            name: json.loads((folder / name / "results.json").read_text())
            for name in args.rows
            if (folder / name / "results.json").exists()
        }
    else:
        results = {name: run_row(name, args) for name in args.rows}
    lines = [HEADER] + [table_row(name, r) for name, r in results.items()]
    legend = "\n".join(f"- `{name}`: {ROWS[name][0]}; `{json.dumps(ROWS[name][1])}`"
                       for name in results)
    markdown = (
        "# Selfie ablation on CIFAR-10\n\n" + "\n".join(lines) + "\n\n"
        + legend + "\n"
    )
    path = pathlib.Path(args.output_dir) / "ablation.md"
    path.write_text(markdown)
    print("\n" + markdown + f"\nWritten: {path.resolve()}")
    return results


if __name__ == "__main__":
    main()
