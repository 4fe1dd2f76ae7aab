#!/usr/bin/env bash
# Sets up .venv, then runs the linter and the full test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check src tests benchmarks examples
.venv/bin/python -m pytest -n 2 -q "$@"
