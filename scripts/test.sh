#!/usr/bin/env bash
# Quick start, part 2: install, then run the test suite (unit tests, DAG checks, smoke pipeline).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export MUJOCO_GL=disable
.venv/bin/python -m pytest -n 2 -q "$@"
