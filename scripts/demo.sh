#!/usr/bin/env bash
# Quick start, part 1: install, then regenerate every figure and table with the demo preset
# (config/config.yaml; about 40 minutes on a 2-core laptop). Extra arguments go to snakemake.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export MUJOCO_GL=disable
# the pipeline's rules call `python`: make it the one with the suite installed
source .venv/bin/activate
snakemake --cores all "$@"
echo "Figures in results/figures/, tables in results/tables/, findings in results/findings.md. HTML report:"
echo "  .venv/bin/snakemake --report results/report.html"
