#!/usr/bin/env bash
# (kept here from the workplace's shared/slurm tooling, so that a clean CI machine has it: .ci/run runs it)
# stop-slurm.sh - end exactly the daemons start-slurm.sh started, by the pid
# files it left in $SLURM_CI_DIR/run (never by name matching). Idempotent.
# SLURM_WIPE=1 also deletes $SLURM_CI_DIR (state, spool, logs, database).
set -uo pipefail
CI_DIR=${SLURM_CI_DIR:-${TMPDIR:-/tmp}/slurm-ci}
RUN=$CI_DIR/run

# stop_pid PIDFILE COMM: TERM the pid if it still is COMM, wait up to 15 s, then KILL
stop_pid() {
  local pf=$1 comm=$2 pid
  [ -s "$pf" ] || { echo "$comm: no pid file ($pf)"; return 0; }
  pid=$(cat "$pf")
  if [ ! -d "/proc/$pid" ] || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$comm" ]; then
    echo "$comm: pid $pid not running (stale pid file removed)"; rm -f "$pf"; return 0
  fi
  kill -TERM "$pid"
  for _ in $(seq 150); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
  if [ -d "/proc/$pid" ]; then echo "$comm: pid $pid ignored TERM, sending KILL"; kill -KILL "$pid"; sleep 0.2; fi
  echo "$comm: pid $pid stopped"
  rm -f "$pf"
}

# Cancel this user's jobs first so that no slurmstepd/job process outlives slurmd.
if [ -s "$RUN/slurmctld.pid" ] && command -v scancel >/dev/null; then
  scancel --user="$(id -un)" 2>/dev/null || true
  for _ in $(seq 75); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.2; done
fi
stop_pid "$RUN/slurmd.pid" slurmd
stop_pid "$RUN/slurmctld.pid" slurmctld
stop_pid "$RUN/slurmdbd.pid" slurmdbd
stop_pid "$RUN/mysql/mysqld.pid" mariadbd
stop_pid "$RUN/munge/munged.pid" munged
if [ "${SLURM_WIPE:-0}" = 1 ]; then rm -rf "$CI_DIR"; echo "removed $CI_DIR"; fi
