#!/usr/bin/env bash
# Creates .venv-bench: recstack plus the peers the benchmarks compare against (never runtime deps).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv-bench/bin/python ] || "$PY" -m venv .venv-bench
stamp=".venv-bench/.installed"
want="$(cat pyproject.toml scripts/bench_setup.sh | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv-bench/bin/python -m pip install -q --upgrade pip
  .venv-bench/bin/python -m pip install -q "torch==2.13.0" numpy
  .venv-bench/bin/python -m pip install -q -e ".[dev]"
  # DeepCTR-Torch pins nothing useful and would pull another torch: install it bare, then its needs.
  .venv-bench/bin/python -m pip install -q --no-deps "deepctr-torch==0.2.9"
  # Its fit() uses Keras callbacks from TensorFlow (CPU build, benchmark environment only).
  .venv-bench/bin/python -m pip install -q scikit-learn requests tqdm tensorflow-cpu
  # MovieLens-100K ships in the recbole wheel (benchmarks/movielens_ctr.py); its pins (old ray, colorlog) are not needed.
  .venv-bench/bin/python -m pip install -q --no-deps recbole
  echo "$want" > "$stamp"
fi
