# SLURM-specific behaviour of the pipeline (profiles/slurm). Outside SLURM nothing here acts but
# the SIGTERM fix (2), which is harmless there.
import runpy
import sys

# 1. snakemake-executor-plugin-slurm 2.8.0 compares the State column of `sacct` with
# "CANCELLED", but sacct reports a cancelled job as "CANCELLED by <uid>": the plugin then takes
# the job for running, and Snakemake waits for it forever instead of retrying it (found by
# tests/test_slurm.py, which scancels a training job). Keep the first word of each state
# (SLURM's state names are single words) before the plugin reads it. Snakemake loads every
# installed executor plugin; only the slurm executor calls this function.
_slurm_plugin = sys.modules.get("snakemake_executor_plugin_slurm")
if _slurm_plugin is not None and hasattr(_slurm_plugin, "query_job_status") and not getattr(
        _slurm_plugin.query_job_status, "qsm_first_word_states", False):
    _plugin_query_job_status = _slurm_plugin.query_job_status

    async def _query_job_status_first_word(command, logger):
        states, seconds = await _plugin_query_job_status(command, logger)
        if states is not None:
            states = {job: (state.split() or [state])[0] for job, state in states.items()}
        return states, seconds

    _query_job_status_first_word.qsm_first_word_states = True
    _slurm_plugin.query_job_status = _query_job_status_first_word


# 2. Snakemake's SIGTERM handler takes the scheduler's lock, which the main thread may hold when
# the signal lands (the handler runs in the main thread): Snakemake then hangs forever. When SLURM
# cancels a job, the job-level Snakemake got its SIGTERM just as it handled the failure of its
# `srun` (killed a moment before), and hung, orphaned, past the job's end (found after
# tests/test_slurm.py). The handler's work moves to a thread of its own
# (workflow/scripts/snakemake_sigterm.py has the details); in every Snakemake run of this
# workflow, local ones included, where the same handler serves.
runpy.run_path(str(Path(workflow.current_basedir).parent / "scripts" / "snakemake_sigterm.py"))[
    "patch_sigterm_handler"]()


# 3. A job killed at its time limit is reported by the plugin only as "SLURM status is:
# 'TIMEOUT'". After a failed run, name the rule, its wildcards and the limit
# (workflow/scripts/slurm_timeouts.py); without SLURM the handler finds nothing and says nothing.
_SLURM_TIMEOUTS = str(Path(workflow.current_basedir).parent / "scripts" / "slurm_timeouts.py")


onerror:
    from snakemake.logging import logger as _logger

    for _message in runpy.run_path(_SLURM_TIMEOUTS)["explain"](log):
        _logger.error(_message)
