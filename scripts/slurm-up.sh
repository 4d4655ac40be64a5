#!/usr/bin/env bash
# Start a single-node SLURM cluster on this machine from Debian's packages, for the end-to-end
# test of profiles/slurm (tests/test_slurm.py). Idempotent: a second call finds it up and returns.
#
#   slurmctld + slurmd   on this host, two partitions: cpu (analysis jobs) and gpu (training jobs;
#                        the same CPU node, with a stub of 2 GPUs so GPU requests are granted)
#   slurmdbd + MariaDB   job accounting: the executor plugin learns job states from `sacct`
#   munge                authentication, with the key Debian's package generates (or a new one)
#
# No cgroups (they do not work in sandboxes such as gVisor): proctrack/pgid, task/none.
# Account for test jobs: `qsm` (user root). Stop with scripts/slurm-down.sh.
#
# Exit status: 0 the cluster is up; 3 not possible here (not root, no apt-get, a SLURM
# configuration this script did not write), reason on stderr; 1 anything else failed.
set -euo pipefail

CLUSTER=qsmtest
ACCOUNT=qsm
MARK="# written by qsm scripts/slurm-up.sh"   # we only ever rewrite configs carrying this line
ETC=/etc/slurm
SKIP=3

say() { echo "slurm-up: $*"; }
skip() { echo "slurm-up: skipped: $*" >&2; exit "$SKIP"; }
die() { echo "slurm-up: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || skip "needs root (installs Debian packages and starts daemons)"
command -v apt-get >/dev/null 2>&1 || skip "needs apt-get (Debian's slurm-wlm packages)"

# Two callers at once (e.g. two pytest workers) must not race through the setup.
mkdir -p /run/lock
exec 9>/run/lock/qsm-slurm-up.lock
flock 9

running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
# Daemons must not inherit our output pipes (a caller reading them would wait forever) nor the
# lock (held until the daemon exits).
daemon() { "$@" </dev/null >/dev/null 2>&1 9>&-; }

if [ -f "$ETC/slurm.conf" ] && ! grep -qF "$MARK" "$ETC/slurm.conf"; then
  skip "$ETC/slurm.conf exists and was not written by this script (a real cluster?); not touching it"
fi

# -- packages ----------------------------------------------------------------------------------
PKGS="slurm-wlm slurmdbd munge mariadb-server"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  say "installing$missing (apt-get, about a minute)"
  export DEBIAN_FRONTEND=noninteractive
  log=$(mktemp)
  # (with systemd the packages start munge and MariaDB themselves; the checks below reuse them)
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; } >"$log" 2>&1; then
    reason=$(grep -E "^(E|W):" "$log" | tail -1)
    skip "apt-get could not install$missing: ${reason:-see apt-get output}"
  fi
  rm -f "$log"
fi

# -- munge -------------------------------------------------------------------------------------
if [ ! -s /etc/munge/munge.key ]; then
  say "generating a munge key"
  mungekey --create --keyfile=/etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
install -d -o munge -g munge -m 755 /run/munge
if ! running /run/munge/munged.pid; then
  say "starting munged"
  daemon runuser -u munge -- /usr/sbin/munged
fi
munge -n | unmunge >/dev/null || die "munge does not authenticate (see /var/log/munge/munged.log)"

# -- MariaDB and the accounting database -------------------------------------------------------
install -d -o mysql -g mysql /run/mysqld
if ! mariadb-admin ping >/dev/null 2>&1; then
  say "starting MariaDB"
  nohup mariadbd-safe --user=mysql </dev/null >/var/log/qsm-mariadb-safe.log 2>&1 9>&- &
  echo $! >/run/qsm-mariadb-safe.pid   # scripts/slurm-down.sh stops only a MariaDB we started
  for _ in $(seq 60); do mariadb-admin ping >/dev/null 2>&1 && break; sleep 1; done
  mariadb-admin ping >/dev/null 2>&1 || die "MariaDB did not start (see /var/log/mysql/error.log)"
fi
install -d -m 755 "$ETC"
install -d -o slurm -g slurm -m 755 /var/lib/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd \
  /var/log/slurm /run/slurm
DBPASS_FILE=/var/lib/slurm/.qsm-dbpass
[ -s "$DBPASS_FILE" ] || (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$DBPASS_FILE")
DBPASS=$(cat "$DBPASS_FILE")
# root reaches MariaDB through its unix socket (Debian's default); slurmdbd logs in by password
mariadb <<SQL
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DBPASS';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DBPASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
SQL

# -- configuration -----------------------------------------------------------------------------
NODE=$(hostname -s)
getent hosts "$NODE" >/dev/null || die "host name $NODE does not resolve (add it to /etc/hosts)"
# CPUs, sockets, cores and memory exactly as slurmd detects them: a node whose configuration
# claims more than it has is drained.
NODE_HW=$(slurmd -C | head -1 | sed 's/^NodeName=[^ ]* //')

changed=0
write() {  # write FILE MODE OWNER: stdin into FILE, remembering whether it changed
  local file=$1 tmp
  tmp=$(mktemp)
  { echo "$MARK"; cat; } >"$tmp"
  if ! cmp -s "$tmp" "$file"; then
    install -m "$2" -o "$3" -g "$3" "$tmp" "$file"
    changed=1
  fi
  rm -f "$tmp"
}

write "$ETC/slurm.conf" 644 root <<EOF
ClusterName=$CLUSTER
SlurmctldHost=$NODE
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# No cgroups: they do not work in sandboxed machines. A step's processes are tracked by their
# process group, as cgroups would hold them: a process whose parent died stays in its group, and
# whatever is left of the group when a step ends (or KillWait after SIGTERM) is SIGKILLed. With
# proctrack/linuxproc (the tree of parent pids under slurmstepd) a job-level Snakemake that hung
# on a cancellation's SIGTERM, orphaned by the batch shell that SIGTERM killed, escaped the kill
# and outlived its job (tests/test_slurm.py; workflow/rules/slurm.smk fixes the hang itself).
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
# accounting in slurmdbd: sacct (how the executor plugin polls job states) and associations, so
# a job with an unknown account is refused as on a real cluster
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageEnforce=associations
AccountingStoreFlags=job_comment
AccountingStorageTRES=gres/gpu
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
GresTypes=gpu
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
# a job is killed at its time limit (no grace), SIGTERM then SIGKILL 10 s later
OverTimeLimit=0
KillWait=10
InactiveLimit=0
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=$NODE $NODE_HW Gres=gpu:stub:2 State=UNKNOWN
PartitionName=cpu Nodes=$NODE Default=YES DefaultTime=60 MaxTime=3-00:00:00 State=UP
PartitionName=gpu Nodes=$NODE DefaultTime=60 MaxTime=3-00:00:00 State=UP
EOF

# A GPU stub: two "GPUs" of type "stub" backed by plain files (slurmd drops GPUs without a
# File), so GPU requests (--gpus=1, --gpus=stub:1, --gres=gpu:1) are scheduled as on a GPU node;
# nothing is bound without cgroups.
touch /var/lib/slurm/fake-gpu0 /var/lib/slurm/fake-gpu1
write "$ETC/gres.conf" 644 root <<EOF
NodeName=$NODE Name=gpu Type=stub File=/var/lib/slurm/fake-gpu[0-1]
EOF

write "$ETC/slurmdbd.conf" 600 slurm <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
PidFile=/run/slurm/slurmdbd.pid
LogFile=/var/log/slurm/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DBPASS
StorageLoc=slurm_acct_db
EOF

stop() {  # stop PIDFILE: the daemon of that pid file, if running
  if running "$1"; then
    local pid; pid=$(cat "$1")
    kill "$pid"
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
}
if [ "$changed" = 1 ]; then
  say "configuration written to $ETC"
  stop /run/slurm/slurmd.pid; stop /run/slurm/slurmctld.pid; stop /run/slurm/slurmdbd.pid
fi

# -- daemons -----------------------------------------------------------------------------------
if ! running /run/slurm/slurmdbd.pid; then
  say "starting slurmdbd"
  daemon slurmdbd
fi
for _ in $(seq 60); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 1; done
sacctmgr -n list cluster >/dev/null 2>&1 || die "slurmdbd does not answer (see /var/log/slurm/slurmdbd.log)"
if [ -z "$(sacctmgr -n -P list cluster "$CLUSTER" format=cluster)" ]; then
  sacctmgr -i add cluster "$CLUSTER" >/dev/null
fi
if [ -z "$(sacctmgr -n -P list account "$ACCOUNT" format=account)" ]; then
  sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" description="qsm suite tests" \
    organization=qsm >/dev/null
fi
if [ -z "$(sacctmgr -n -P list association user=root account="$ACCOUNT" format=account)" ]; then
  sacctmgr -i add user root account="$ACCOUNT" cluster="$CLUSTER" >/dev/null
fi
if ! running /run/slurm/slurmctld.pid; then
  say "starting slurmctld"
  daemon slurmctld
fi
if ! running /run/slurm/slurmd.pid; then
  say "starting slurmd"
  daemon slurmd
fi

state=""
for _ in $(seq 60); do
  state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null | sort -u | tr '\n' ' ')
  case "$state" in idle*|mixed*|allocated*) break ;; esac
  # a node left down or drained by an earlier run comes back once it has registered
  scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true
  sleep 1
done
case "$state" in
  idle*|mixed*|allocated*) ;;
  *) die "node $NODE is '${state:-unknown}' (see /var/log/slurm/slurmd.log, slurmctld.log)" ;;
esac
say "cluster $CLUSTER up: node $NODE ($state), partitions $(sinfo -h -o %P | tr '\n' ' ')account $ACCOUNT"
