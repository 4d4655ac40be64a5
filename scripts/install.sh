#!/usr/bin/env bash
# Create .venv (once) and install the suite with its pinned dependencies and test tools.
# QSM_EXTRAS=official also installs the optional extra for the official JAX implementation
# (equivalence tests, qsm_official baseline); extras are comma-separated.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
EXTRAS="test${QSM_EXTRAS:+,$QSM_EXTRAS}"
.venv/bin/python -m pip install --quiet -e ".[$EXTRAS]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import qsm, baselines, analysis, dm_control, rliable, snakemake" \
  || { echo "installation failed: see pip output above" >&2; exit 1; }
