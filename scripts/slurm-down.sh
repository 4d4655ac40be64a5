#!/usr/bin/env bash
# Stop the single-node SLURM cluster that scripts/slurm-up.sh started: slurmd, slurmctld,
# slurmdbd, then MariaDB and munged. Packages, configuration, accounting database and job
# history stay; scripts/slurm-up.sh starts it again.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "slurm-down: needs root" >&2; exit 1; }
if [ -f /etc/slurm/slurm.conf ] && ! grep -qF "# written by qsm scripts/slurm-up.sh" /etc/slurm/slurm.conf; then
  echo "slurm-down: /etc/slurm/slurm.conf was not written by scripts/slurm-up.sh; not stopping anything" >&2
  exit 1
fi

stop() {  # stop NAME PIDFILE
  local pid
  if [ -s "$2" ] && pid=$(cat "$2") && kill -0 "$pid" 2>/dev/null; then
    echo "slurm-down: stopping $1 (pid $pid)"
    kill "$pid"
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
    echo "slurm-down: $1 did not stop within 30 s; killing it" >&2
    kill -9 "$pid" 2>/dev/null || true
  fi
}
stop slurmd /run/slurm/slurmd.pid
stop slurmctld /run/slurm/slurmctld.pid
stop slurmdbd /run/slurm/slurmdbd.pid
# MariaDB only if slurm-up.sh started it (its mariadbd-safe wrapper restarts a killed server)
if [ -s /run/qsm-mariadb-safe.pid ]; then
  if mariadb-admin ping >/dev/null 2>&1; then
    echo "slurm-down: stopping MariaDB"
    mariadb-admin shutdown
  fi
  stop mariadbd-safe /run/qsm-mariadb-safe.pid
  rm -f /run/qsm-mariadb-safe.pid
fi
stop munged /run/munge/munged.pid
echo "slurm-down: stopped"
