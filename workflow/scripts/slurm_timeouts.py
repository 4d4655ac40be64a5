"""After a failed run on SLURM, name every job that was killed at its time limit: its rule, its
wildcards and the limit. The executor plugin only reports "SLURM status is: 'TIMEOUT'", which
says neither which runtime was exceeded nor where to raise it.

Called by the pipeline's onerror handler (workflow/rules/slurm.smk) with Snakemake's log files.
It reads the executor's submission lines ("Job 3 has been submitted with SLURM jobid 17 (log:
.../slurm_logs/rule_train/qsm_cheetah_run_0/17.log)") and asks `sacct` for the state and the
time limit of the last attempt of each job. Without SLURM (or without sacct) it does nothing.
"""
import re
import shutil
import subprocess
from pathlib import Path

SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (.+?)\)")
# Snakemake's job block: "rule train:" ... "    jobid: 2" ... "    wildcards: algo=qsm, ..."
JOB_BLOCK = re.compile(r"^(?:local)?rule (\w+):\n((?:    .*\n)+)", re.M)
# a rule with a `message:` is logged by it instead: "Job 2: benchmark: qsm on cheetah_run, ..."
JOB_MESSAGE = re.compile(r"^Job (\d+): (.+)$", re.M)


def job_wildcards(log_text: str) -> dict:
    """Snakemake job id -> "algo=qsm, task=cheetah_run, run_id=..., seeds=0_1" from its job block,
    or the job's message where its rule has one (the training rule's names algo, task and run)."""
    found = dict(JOB_MESSAGE.findall(log_text))
    for _, body in JOB_BLOCK.findall(log_text):
        jobid = re.search(r"^    jobid: (\d+)$", body, re.M)
        wildcards = re.search(r"^    wildcards: (.*)$", body, re.M)
        if jobid and wildcards:
            found[jobid.group(1)] = wildcards.group(1)
    return found


def submissions(log_text: str) -> dict:
    """(rule, wildcards) -> SLURM job id of its last attempt (attempts come in log order)."""
    pretty = job_wildcards(log_text)
    last = {}
    for smk_jobid, jobid, path in SUBMITTED.findall(log_text):
        parts = Path(path).parts  # <logdir>/rule_<name>[/<wildcards>]/<jobid>.log
        if len(parts) >= 3 and parts[-3].startswith("rule_"):
            rule, wildcards = parts[-3][len("rule_"):], parts[-2]
        elif len(parts) >= 2 and parts[-2].startswith("rule_"):
            rule, wildcards = parts[-2][len("rule_"):], ""
        else:
            continue  # a group job, or a log directory this parser does not know
        last[(rule, pretty.get(smk_jobid, wildcards))] = jobid
    return last


def minutes(limit: str):
    """SLURM's [D-]HH:MM:SS (or MM:SS) as minutes; None for UNLIMITED or anything else."""
    m = re.fullmatch(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)", limit.strip())
    if not m:
        return None
    days, hours, mins, secs = (int(g) if g else 0 for g in m.groups())
    return days * 1440 + hours * 60 + mins + secs / 60


def run_sacct(jobids):
    """{jobid: (state, timelimit, elapsed)} of the given jobs, from sacct."""
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-j", ",".join(jobids),
                          "-o", "JobIDRaw,State,Timelimit,Elapsed"],
                         capture_output=True, text=True, timeout=60).stdout
    table = {}
    for line in out.splitlines():
        fields = line.split("|")
        if len(fields) == 4:
            table[fields[0]] = (fields[1].split()[0], fields[2], fields[3])
    return table


def timeout_messages(log_text: str, sacct=run_sacct) -> list:
    """One sentence per rule job whose last attempt ran out of time."""
    last = submissions(log_text)
    if not last:
        return []
    states = sacct(sorted(set(last.values()), key=int))
    messages = []
    for (rule, wildcards), jobid in last.items():
        state, limit, elapsed = states.get(jobid, ("", "", ""))
        if state != "TIMEOUT":
            continue
        mins = minutes(limit)
        limit_text = (f"{mins:g} min" if mins is not None else limit) + \
            (f" ({limit})" if mins is not None and mins >= 60 else "")
        where = f"rule {rule} ({wildcards})" if wildcards else f"rule {rule}"
        messages.append(
            f"{where} exceeded its runtime of {limit_text}: SLURM job {jobid} was killed at its "
            f"time limit after {elapsed}. Raise the rule's runtime (minutes), e.g. "
            f"--set-resources {rule}:runtime=<minutes> or its entry in profiles/slurm/config.yaml "
            f"(training jobs: resources.train.runtime in the config), then run the same command "
            f"again; training resumes from its last checkpoint.")
    return messages


def explain(logfiles) -> list:
    """The messages for Snakemake's log files (onerror's `log`: a path or a list of paths)."""
    if isinstance(logfiles, (str, Path)):
        logfiles = [logfiles]
    text = ""
    for path in logfiles or []:
        try:
            text += Path(path).read_text(errors="replace")
        except OSError:
            pass
    if "SLURM run ID" not in text or shutil.which("sacct") is None:
        return []
    try:
        return timeout_messages(text)
    except (OSError, subprocess.SubprocessError):
        return []  # sacct unreachable: the plugin's own error report stands alone
