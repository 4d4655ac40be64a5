#!/usr/bin/env bash
# Train the study (config/study.yaml) from a frozen commit, on one core at low priority, so that
# the machine's other core stays free and changes to the checkout never touch runs in progress.
#
#   bash scripts/study.sh [--max-hours H] [--stop-by TIME] [COMMIT]  # train what the archive lacks
#     (TIME as date -d reads it; a clock time alone that has passed today is tomorrow's)
#   bash scripts/study.sh archive [COMMIT]           # copy finished runs into results/archive/study
#
# COMMIT defaults to the commit that trained the runs already archived (results/archive/study/
# MANIFEST.json), so that every run of the study comes from one commit; with an empty archive,
# to HEAD. The commit is checked out as a git worktree beside the checkout (../study-<commit>, or
# $QSM_STUDY_DIR); its results/ (runs, logs, checkpoints) live there, outside the checkout.
# Training runs one job (one seed) at a time, in this order: the jobs with a checkpoint (begun by
# an earlier sitting: each resumes from its last checkpoint, every 5000 steps), then the jobs the
# archive lacks in the order of the configuration's key queue (its roles and tasks first, then
# seed by seed), cheapest first by the hours their archived peers took (python -m
# analysis.records.archive pending), those of unknown length last; --max-hours leaves out the jobs
# estimated to take longer, and --stop-by (a time, as date -d reads it) starts no job estimated to
# end after it, so that a sitting finishes whole jobs. Each finished job is
# archived at once (results/archive/study; commit it), and a job that another sitting archived
# meanwhile is skipped. Run the same command again after an
# interruption. Progress: <worktree>/results/study.log, one log per job under
# <worktree>/results/logs/. It uses this checkout's .venv (scripts/install.sh with
# QSM_EXTRAS=official), with the worktree's sources first on the path. Everything is pinned to one
# CPU (the last, or $QSM_STUDY_CPU): XLA sizes its thread pool from the CPUs it may use, and the
# official learners' JAX would otherwise take both cores whatever its flags say.
# One block, parsed whole before it runs: bash otherwise reads a script as it goes, and an edit to
# this file (a checkout's pull) would change the sittings that run it, for hours.
{
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$(pwd)
action=train
max_hours=()
stop_by=  # epoch seconds: start no job estimated to end later
if [ "${1:-}" = archive ]; then action=archive; shift; fi
while [[ "${1:-}" == --* ]]; do
  case "$1" in
    --max-hours)
      [[ "${2:-}" =~ ^[0-9]+([.][0-9]+)?$ ]] \
        || { echo "error: --max-hours takes a number of hours, got '${2:-}'" >&2; exit 2; }
      max_hours=(--max-hours "$2"); shift 2 ;;
    --stop-by)
      stop_by=$(date -d "${2:-}" +%s 2>/dev/null) && [[ "${2:-}" == *[0-9]* ]] \
        || { echo "error: --stop-by takes a time (date -d: '18:00', '2026-12-08 03:30'), got" \
                  "'${2:-}'" >&2; exit 2; }
      # a clock time alone that has passed today means tomorrow's (a sitting past midnight)
      if [ "$stop_by" -le "$(date +%s)" ] && [[ "$2" =~ ^[0-9]{1,2}:[0-9]{2}(:[0-9]{2})?$ ]]; then
        stop_by=$(date -d "tomorrow $2" +%s)
      fi
      [ "$stop_by" -gt "$(date +%s)" ] \
        || { echo "error: --stop-by $2 is $(date -d "@$stop_by") and has passed" >&2; exit 2; }
      echo "study: starting no job estimated to end after $(date -d "@$stop_by" '+%F %H:%M')" >&2
      shift 2 ;;
    *) echo "error: unknown option $1 (--max-hours H, --stop-by TIME)" >&2; exit 2 ;;
  esac
done
archive=$checkout/results/archive/study
# the newest commit (by commit date) that trained archived runs
trained_at=$(python3 -c 'import json,sys; runs=json.load(open(sys.argv[1]))["runs"]
print(" ".join(sorted({r["git_commit"] for r in runs if r.get("git_commit")})))' \
  "$archive/MANIFEST.json" 2>/dev/null || true)
trained_at=$( { [ -n "$trained_at" ] && git log --no-walk --format=%H $trained_at | head -1; } || true)
commit=$(git rev-parse "${1:-${trained_at:-HEAD}}")
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
# The checkout's analysis code reads the worktree's runs: python -P keeps the worktree (the
# current directory) off sys.path, so that PYTHONPATH=$checkout wins over the frozen sources.
if [ "$action" = archive ]; then
  # The run manifest of the study's configuration (only that rule: --nolock lets training go on),
  # then every finished run it lists, with its checksums, into the checkout's archive.
  snakemake results/tables/run_manifest.json --nolock --cores 1 --configfile config/study.yaml \
    >/dev/null
  PYTHONPATH="$checkout" python -P -m analysis.records.archive add --manifest results/tables/run_manifest.json \
    --archive "$archive"
  exit
fi
# one training of the study at a time (the --unlock below would break a second one's lock)
exec 9> results/.study.lock
flock -n 9 || { echo "error: the study is already training in $worktree" >&2; exit 2; }
# A commit whose study.yaml reads the archive must be told to train (older ones always train).
retrain=()
if grep -q '^  retrain:' workflow/schemas/config.schema.yaml; then retrain=(--config retrain=true); fi
snakemake --unlock --configfile config/study.yaml >/dev/null 2>&1 || true
# The run manifest as the archive answers it: a run archived from an older commit (another code
# version, so another run_id at this commit) is listed under the identity it was trained with, and
# is not trained again; what the archive lacks is listed under this commit's identities.
snakemake results/tables/run_manifest.json --cores 1 --configfile config/study.yaml \
  >> results/study.log 2>&1
seed_block=$(python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["seed_block"])' \
  config/study.yaml)
# the training order the study's configuration asks for (key queue; older ones: cheapest first)
read -r -a order <<< "$(python -c 'import sys, yaml
q = yaml.safe_load(open(sys.argv[1])).get("queue") or {}
print(" ".join((["--first", *q["first"]] if q.get("first") else [])
               + (["--seed-major"] if q.get("seed_major") else [])))' config/study.yaml)"
plan=$(PYTHONPATH="$checkout" python -P -m analysis.records.archive pending --seed-block "$seed_block" \
  --manifest results/tables/run_manifest.json --archive "$archive" "${max_hours[@]}" "${order[@]}")
# jobs begun in an earlier sitting go first: the Snakefile keeps a job's checkpoints in
# results/checkpoints/<algo>/<task>/<run_id>/seeds-<seeds>.pt
begun=() rest=()
while IFS=$'\t' read -r target hours; do
  [ -n "$target" ] || continue
  seeds=$(basename "$target" .done); seeds=${seeds#block_}
  run_dir=$(dirname "$target")
  if [ -f "results/checkpoints/${run_dir#results/runs/}/seeds-${seeds//_/-}.pt" ]; then
    begun+=("$target $hours")
  else
    rest+=("$target $hours")
  fi
done <<< "$plan"
jobs=("${begun[@]}" "${rest[@]}")
echo "study: commit $commit in $worktree; ${#jobs[@]} jobs to train (${#begun[@]} begun);" \
  "log: $worktree/results/study.log"
# Sittings (one per core, each in its own worktree) claim a job before training it: a lock on a
# file of a directory they share, held by the job's processes, so that it is released when they
# end, however they end. A job another sitting holds is skipped.
claims=${QSM_STUDY_CLAIMS:-$(dirname "$checkout")/study-claims}
mkdir -p "$claims"
n=0
for job in "${jobs[@]}"; do
  n=$((n + 1)); target=${job% *}; hours=${job##* }
  exec 8> "$claims/${target//\//_}.lock"
  if ! flock -n 8; then
    echo "study: job $n of ${#jobs[@]}: $target is being trained by another sitting: skipped" \
      >> results/study.log
    exec 8>&-
    continue
  fi
  # a sitting that must end by a time (the machine's session) starts only what it can finish,
  # with a margin of a tenth for a slower task: a job cut off loses all of its work on a machine
  # that does not keep its disk
  if [ -n "$stop_by" ] && { [ "$hours" = nan ] || python -c 'import sys, time
late = time.time() + 1.1 * 3600 * float(sys.argv[1]) > float(sys.argv[2])
sys.exit(0 if late else 1)' "$hours" "$stop_by"; }; then
    echo "study: job $n of ${#jobs[@]}: $target (estimated $hours h) would not end by" \
      "$(date -d "@$stop_by" +%H:%M): skipped" >> results/study.log
    exec 8>&-
    continue
  fi
  # another sitting (another core's worktree) may have archived it since the list was made
  if still=$(PYTHONPATH="$checkout" python -P -m analysis.records.archive pending --seed-block "$seed_block" \
        --manifest results/tables/run_manifest.json --archive "$archive") \
      && [[ $'\n'"$still" != *$'\n'"$target"$'\t'* ]]; then
    echo "study: job $n of ${#jobs[@]}: $target is archived already: skipped" >> results/study.log
    exec 8>&-
    continue
  fi
  echo "study: job $n of ${#jobs[@]}: $target (estimated $hours h) at $(date -u +%H:%M)" \
    >> results/study.log
  if nice -n 19 taskset -c "$cpu" snakemake --cores 1 --configfile config/study.yaml \
      "${retrain[@]}" --rerun-incomplete "$target" >> results/study.log 2>&1; then
    PYTHONPATH="$checkout" python -P -m analysis.records.archive add \
      --manifest results/tables/run_manifest.json --archive "$archive" >> results/study.log 2>&1 \
      || echo "study: archiving after $target failed (see above)" >> results/study.log
  else
    echo "study: $target failed: its log is under results/logs/" >> results/study.log
  fi
  exec 8>&-
done
echo "study: done at $(date -u +%H:%M); $n jobs tried" >> results/study.log
exit
}
