#!/usr/bin/env bash
# Sets up .venv (scripts/setup.sh), then runs the end-to-end demo: a synthetic play log to a served recommendation.
# Arguments go to `recstack demo`: --rows N, --out DIR, --no-serve, --seed S.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
bash scripts/setup.sh
setup=$((SECONDS - start))
.venv/bin/python -m recstack demo "$@"
echo "scripts/demo.sh: set-up ${setup} s, demo $((SECONDS - start - setup)) s"
