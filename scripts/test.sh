#!/usr/bin/env bash
# Quick start, part 2: install, then run the test suite (unit tests, DAG checks, smoke pipeline).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export MUJOCO_GL=disable
# the pipeline's rules call `python`: make it the one with the suite installed
source .venv/bin/activate
python -m pytest -n 2 -q "$@"
