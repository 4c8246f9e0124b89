#!/usr/bin/env bash
# Times benchmarks/step.py of several commits in turn, round after round, so
# that a load that drifts during the run (a shared machine) affects every
# commit alike; with TORCH_PYTHON set, the PyTorch reference runs in each
# round too. Each commit runs from its own `git worktree` with its own
# keras_selfie (the editable install of this checkout is bypassed).
#
#   benchmarks/alternate_commits.sh 3 7793d7c 85bd007 HEAD -- \
#       --batch-sizes 32 --windows 3 --steps 3 --no-flops
#   TORCH_PYTHON=/path/to/venv-with-torch/bin/python benchmarks/...
#
# PYTHON defaults to .venv/bin/python; TORCH_ARGS (the reference's
# arguments) to "--batch-sizes 32".
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=$1
shift
commits=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do commits+=("$1"); shift; done
[ $# -gt 0 ] && shift
python=${PYTHON:-.venv/bin/python}
work=$(mktemp -d)
trap 'for c in "${commits[@]}"; do git worktree remove --force "$work/$c" 2>/dev/null || true; done; rm -rf "$work"' EXIT
for commit in "${commits[@]}"; do
  git worktree add --quiet --detach "$work/$commit" "$commit"
done
run_step='
import runpy, sys
tree = sys.argv.pop(1)
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path[:0] = [tree, tree + "/benchmarks"]
sys.argv[0] = tree + "/benchmarks/step.py"
runpy.run_path(sys.argv[0], run_name="__main__")
'
for round in $(seq "$rounds"); do
  for commit in "${commits[@]}"; do
    echo "=== round $round: $commit ($(git -C "$work/$commit" rev-parse --short HEAD)) ==="
    "$python" -c "$run_step" "$work/$commit" "$@"
  done
  if [ -n "${TORCH_PYTHON:-}" ]; then
    echo "=== round $round: PyTorch reference ==="
    # shellcheck disable=SC2086
    "$TORCH_PYTHON" benchmarks/pytorch_reference.py ${TORCH_ARGS:---batch-sizes 32}
  fi
done
