#!/usr/bin/env bash
# Train the study (config/study.yaml) from a frozen commit, on one core at low priority, so that
# the machine's other core stays free and changes to the checkout never touch runs in progress.
#
#   bash scripts/study.sh [COMMIT]      # default: the commit config/study.yaml was last changed in
#
# The commit is checked out as a git worktree beside the checkout (../study-<commit>, or
# $QSM_STUDY_DIR); its results/ (runs, logs, checkpoints) live there, outside the checkout. Run the
# same command again after an interruption: Snakemake reruns the unfinished jobs and each resumes
# from its last checkpoint (every 5000 steps). Progress: <worktree>/results/study.log, and one log
# per job under <worktree>/results/logs/. It uses this checkout's .venv (scripts/install.sh with
# QSM_EXTRAS=official), with the worktree's sources first on the path.
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$(pwd)
commit=$(git rev-parse "${1:-$(git log -n 1 --format=%H -- config/study.yaml)}")
worktree=${QSM_STUDY_DIR:-$(dirname "$checkout")/study-${commit:0:8}}
if [ ! -d "$worktree" ]; then
  git worktree add --detach "$worktree" "$commit"
fi
[ "$(git -C "$worktree" rev-parse HEAD)" = "$commit" ] \
  || { echo "error: $worktree is not at $commit" >&2; exit 2; }
[ -x "$checkout/.venv/bin/snakemake" ] \
  || { echo "error: no $checkout/.venv: run QSM_EXTRAS=official bash scripts/install.sh" >&2; exit 2; }
cd "$worktree"
export PATH="$checkout/.venv/bin:$PATH" PYTHONPATH="$worktree" MUJOCO_GL=disable \
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
mkdir -p results
snakemake --unlock --configfile config/study.yaml >/dev/null 2>&1 || true
echo "study: commit $commit in $worktree; log: $worktree/results/study.log"
exec nice -n 19 snakemake --cores 1 --configfile config/study.yaml --rerun-incomplete \
  --keep-going >> results/study.log 2>&1
