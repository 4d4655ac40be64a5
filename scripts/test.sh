#!/usr/bin/env bash
# Quick start, part 2: install, then run the test suite (unit tests, DAG checks, smoke pipeline,
# and the smoke pipeline through SLURM).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# tests/test_slurm.py needs a SLURM cluster: start the single-node one (root and apt-get only;
# elsewhere slurm-up.sh says why not, and those tests skip with that reason)
if [ "${QSM_SLURM_TESTS:-1}" != 0 ]; then
  bash scripts/slurm-up.sh || true
fi
export MUJOCO_GL=disable
# the pipeline's rules call `python`: make it the one with the suite installed
source .venv/bin/activate
python -m pytest -n 2 -q "$@"
