#!/usr/bin/env bash
# Sets up .venv, then runs the end-to-end demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m recstack demo "$@"
