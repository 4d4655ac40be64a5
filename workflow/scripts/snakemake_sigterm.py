"""Snakemake's SIGTERM handler without its self-deadlock (workflow/rules/slurm.smk applies it).

JobScheduler.exit_gracefully (snakemake 9.27, as upstream's main of 2026-08) takes the scheduler's
lock, a plain threading.Lock. Python runs a signal handler in the main thread, between two of its
bytecodes, and the main thread holds that lock in schedule() while it post-processes a finished or
failed job: a SIGTERM landing there waits for itself forever (a futex wait, deaf to further
SIGTERMs; only SIGKILL ends it).

SLURM cancels a job (scancel, a time limit) with SIGTERM to each of its processes in turn, deepest
first under proctrack/linuxproc: the batch script's `sh -c srun ...` dies, the job-level Snakemake
starts handling that failure under the lock, and its own SIGTERM, sent microseconds later, lands
there whenever the node delays it by about a millisecond (reproduced: 2 cancellations of 8 hung
with slurmstepd's kill() calls delayed by 1.1-1.2 ms; the hung process's stack ends in
exit_gracefully called from inside _finish_jobs). Orphaned by the batch shell that the same SIGTERM
killed, the hung Snakemake escaped the job's SIGKILL and outlived its job.

patch_sigterm_handler() makes the handler hand its work to a thread of its own, which waits for
the main thread to let go of the lock: the effect (a graceful exit) is the same.
"""
import _thread  # not threading: starting a threading.Thread takes locks the main thread may hold


def patch_sigterm_handler() -> bool:
    """Patch JobScheduler.exit_gracefully (once; later calls do nothing). False where this
    Snakemake has no such handler."""
    try:
        from snakemake.scheduling.job_scheduler import JobScheduler
    except ImportError:  # another Snakemake layout: nothing to patch
        return False
    handler = getattr(JobScheduler, "exit_gracefully", None)
    if handler is None:
        return False
    if getattr(handler, "qsm_off_the_main_thread", False):
        return True

    def exit_gracefully(self, *args):
        try:
            _thread.start_new_thread(handler, (self, *args))
        except RuntimeError:  # no new threads (interpreter shutdown): the flag alone
            self._user_kill = "graceful"

    exit_gracefully.qsm_off_the_main_thread = True
    JobScheduler.exit_gracefully = exit_gracefully
    return True
