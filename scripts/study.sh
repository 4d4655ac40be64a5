#!/usr/bin/env bash
# Train the study (config/study.yaml) from a frozen commit, on one core at low priority, so that
# the machine's other core stays free and changes to the checkout never touch runs in progress.
#
#   bash scripts/study.sh [COMMIT]           # train (again after an interruption: it resumes)
#   bash scripts/study.sh archive [COMMIT]   # copy the finished runs into results/archive/study
#
# COMMIT defaults to the commit that trained the runs already archived (results/archive/study/
# MANIFEST.json), so that every run of the study comes from one commit; with an empty archive,
# to HEAD. The commit is checked out as a git worktree beside the checkout (../study-<commit>, or
# $QSM_STUDY_DIR); its results/ (runs, logs, checkpoints) live there, outside the checkout. Run the
# same command again after an interruption: Snakemake reruns the unfinished jobs and each resumes
# from its last checkpoint (every 5000 steps). Progress: <worktree>/results/study.log, and one log
# per job under <worktree>/results/logs/. It uses this checkout's .venv (scripts/install.sh with
# QSM_EXTRAS=official), with the worktree's sources first on the path. Everything is pinned to one
# CPU (the last, or $QSM_STUDY_CPU): XLA sizes its thread pool from the CPUs it may use, and the
# official learners' JAX would otherwise take both cores whatever its flags say.
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$(pwd)
action=train
if [ "${1:-}" = archive ]; then action=archive; shift; fi
archive=$checkout/results/archive/study
trained_at=$(python3 -c 'import json,sys; runs=json.load(open(sys.argv[1]))["runs"]
commits=sorted({r["git_commit"] for r in runs if r.get("git_commit")})
print(commits[-1] if commits else "HEAD")' "$archive/MANIFEST.json" 2>/dev/null || echo HEAD)
commit=$(git rev-parse "${1:-$trained_at}")
worktree=${QSM_STUDY_DIR:-$(dirname "$checkout")/study-${commit:0:8}}
if [ ! -d "$worktree" ]; then
  git worktree add --detach "$worktree" "$commit"
fi
[ "$(git -C "$worktree" rev-parse HEAD)" = "$commit" ] \
  || { echo "error: $worktree is not at $commit" >&2; exit 2; }
[ -x "$checkout/.venv/bin/snakemake" ] \
  || { echo "error: no $checkout/.venv: run QSM_EXTRAS=official bash scripts/install.sh" >&2; exit 2; }
cd "$worktree"
# the CPU to pin to: the last one this process may use (GNU nproc also honours OMP_NUM_THREADS
# and OMP_THREAD_LIMIT, set below or by the caller, and would then say 1 and pin to CPU 0)
cpu=${QSM_STUDY_CPU:-$(( $(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc) - 1 ))}
export PATH="$checkout/.venv/bin:$PATH" PYTHONPATH="$worktree" MUJOCO_GL=disable \
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
mkdir -p results
if [ "$action" = archive ]; then
  # The run manifest of the study's configuration (only that rule: --nolock lets training go on),
  # then every finished run it lists, with its checksums, into the checkout's archive.
  snakemake results/tables/run_manifest.json --nolock --cores 1 --configfile config/study.yaml \
    >/dev/null
  PYTHONPATH="$checkout" python -m analysis.archive add --manifest results/tables/run_manifest.json \
    --archive "$archive"
  exit
fi
# A commit whose study.yaml reads the archive must be told to train (older ones always train).
retrain=()
if grep -q '^  retrain:' workflow/schemas/config.schema.yaml; then retrain=(--config retrain=true); fi
snakemake --unlock --configfile config/study.yaml >/dev/null 2>&1 || true
echo "study: commit $commit in $worktree; log: $worktree/results/study.log"
exec nice -n 19 taskset -c "$cpu" snakemake --cores 1 --configfile config/study.yaml "${retrain[@]}" \
  --rerun-incomplete --keep-going >> results/study.log 2>&1
