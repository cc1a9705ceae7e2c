#!/usr/bin/env bash
# (kept here from the workplace's shared/slurm tooling, so that a clean CI machine has it: .ci/run runs it)
# start-slurm.sh - start a single-node SLURM cluster inside a root container
# without systemd: munged, [mariadbd + slurmdbd,] slurmctld, slurmd.
# Idempotent: re-running it while the daemons are up only checks them and
# waits for the node to be idle.
#
# Env knobs:
#   SLURM_CI_DIR      where state, spool, logs, DB and pid files live
#                     (default $TMPDIR/slurm-ci, else /tmp/slurm-ci)
#   SLURM_PARTITION   partition name (default: debug)
#   SLURM_NODE_NAME   node name (default: hostname -s)
#   SLURM_ACCOUNTING  1: run slurmdbd + a private MariaDB, so that sacct works
#                     (submitit needs sacct for job.state and to notice jobs
#                     that died without a result); 0: no accounting;
#                     auto (default): 1 if slurmdbd and mariadbd are installed
#   SLURM_DB_PORT     loopback TCP port of the private MariaDB (default 6833)
#   SLURM_INSTALL=1   apt-get install what is missing (with accounting unless
#                     SLURM_ACCOUNTING=0)
#   SLURM_WAIT_S      how long to wait for each daemon / the node (default 60)
#
# Every daemon writes its pid file under $SLURM_CI_DIR/run; stop-slurm.sh ends
# exactly those pids and nothing else. Run it under `nice -n 19` to make the
# daemons and the jobs they start low-priority (niceness is inherited).
set -euo pipefail

T0=$EPOCHREALTIME
CI_DIR=${SLURM_CI_DIR:-${TMPDIR:-/tmp}/slurm-ci}
PARTITION=${SLURM_PARTITION:-debug}
NODE=${SLURM_NODE_NAME:-$(hostname -s)}
CTLD_HOST=$(hostname -s)          # slurmctld insists on its own hostname here
ACCT=${SLURM_ACCOUNTING:-auto}
DB_PORT=${SLURM_DB_PORT:-6833}
WAIT_S=${SLURM_WAIT_S:-60}
RUN=$CI_DIR/run
LOG=$CI_DIR/log
CONF=/etc/slurm/slurm.conf        # compiled-in default: sbatch/submitit find it without SLURM_CONF
DBDCONF=/etc/slurm/slurmdbd.conf

elapsed() { awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.2f", b-a}'; }
log() { printf '[start-slurm %ss] %s\n' "$(elapsed)" "$*"; }
die() { echo "start-slurm: $*" >&2; exit 1; }
# wait_for SECONDS CMD...: poll CMD every 0.2 s
wait_for() { local n=$(( $1 * 5 )); shift; for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done; return 1; }
# detach LOGFILE CMD...: run CMD with stdin /dev/null, stdout/stderr appended to
# LOGFILE and every other inherited fd closed, so that no daemon keeps a
# caller's pipe open (a CI runner reading our output would otherwise hang)
detach() {
  local logf=$1; shift
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
    done
    exec "$@" </dev/null >>"$logf" 2>&1
  )
}
# alive PIDFILE COMM -> 0 if the pid in PIDFILE is running and is COMM
alive() {
  local pf=$1 comm=$2 pid
  [ -s "$pf" ] || return 1
  pid=$(cat "$pf")
  [ -d "/proc/$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ]
}

# --- 0. packages ----------------------------------------------------------------
have_acct_pkgs() { command -v slurmdbd >/dev/null && command -v mariadbd >/dev/null; }
if [ "${SLURM_INSTALL:-0}" = 1 ]; then
  pkgs=""
  command -v slurmctld >/dev/null || pkgs="slurmctld slurmd slurm-client munge"
  if [ "$ACCT" != 0 ] && ! have_acct_pkgs; then pkgs="$pkgs slurmdbd mariadb-server"; fi
  if [ -n "$pkgs" ]; then
    log "apt-get install $pkgs"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
    log "installed"
  fi
fi
command -v slurmctld >/dev/null || die "slurmctld not installed (SLURM_INSTALL=1, or apt-get install slurmctld slurmd slurm-client munge)"
if [ "$ACCT" = auto ]; then if have_acct_pkgs; then ACCT=1; else ACCT=0; fi; fi
if [ "$ACCT" = 1 ] && ! have_acct_pkgs; then die "SLURM_ACCOUNTING=1 needs: apt-get install slurmdbd mariadb-server"; fi

mkdir -p "$RUN" "$LOG" "$CI_DIR/state" "$CI_DIR/spool"
chmod 755 "$CI_DIR" "$RUN" "$LOG"

# --- 1. munge -------------------------------------------------------------------
# Debian's postinst normally creates the key; create one if it is absent.
if [ ! -s /etc/munge/munge.key ]; then
  log "creating /etc/munge/munge.key"
  mkdir -p /etc/munge
  if command -v mungekey >/dev/null; then mungekey --create --keyfile=/etc/munge/munge.key --force
  else dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none; fi
fi
chown -R munge:munge /etc/munge; chmod 700 /etc/munge; chmod 400 /etc/munge/munge.key
# /run/munge normally comes from systemd's RuntimeDirectory=: make it by hand
install -d -o munge -g munge -m 755 /run/munge /var/log/munge /var/lib/munge "$RUN/munge"
MUNGE_PID=$RUN/munge/munged.pid
if alive "$MUNGE_PID" munged; then
  log "munged already running (pid $(cat "$MUNGE_PID"))"
elif [ -S /run/munge/munge.socket.2 ] && munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  log "a munged not started by this script serves /run/munge/munge.socket.2: using it"
else
  rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
  log "starting munged (as user munge)"
  detach "$LOG/daemons.out" runuser -u munge -- /usr/sbin/munged --pid-file="$MUNGE_PID" --log-file=/var/log/munge/munged.log
  wait_for 10 alive "$MUNGE_PID" munged || { tail -5 /var/log/munge/munged.log >&2; die "munged did not start"; }
fi
munge -n | unmunge >/dev/null || die "munge round-trip failed"

# --- 2. slurm.conf --------------------------------------------------------------
# "CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105"
HW=$(slurmd -C | head -1 | sed 's/^NodeName=[^ ]* //')
if [ "$ACCT" = 1 ]; then
  ACCT_LINES="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819"
else
  ACCT_LINES="AccountingStorageType=accounting_storage/none"
fi
mkdir -p /etc/slurm
NEWCONF=$(mktemp)
cat > "$NEWCONF" <<EOF
# written by start-slurm.sh - single-node CI cluster
ClusterName=ci
# controller and node pinned to loopback: no DNS or /etc/hosts entry needed
SlurmctldHost=${CTLD_HOST}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
SwitchType=switch/none
# no cgroups: plain /proc process tracking, no task containment
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
${ACCT_LINES}
JobCompType=jobcomp/none
MailProg=/bin/true
SchedulerType=sched/backfill
# batch_sched_delay=0: schedule a submitted batch job on the next 1 s tick of
# the controller instead of up to 3 s later (default 3)
SchedulerParameters=batch_sched_delay=0
# a job whose dependency can never be met (afterok on a failed job) is
# cancelled instead of pending forever. NB: since Slurm 20.11 this belongs in
# DependencyParameters; in SchedulerParameters it is silently ignored
DependencyParameters=kill_invalid_depend
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without a default, a job that gives no --mem takes the whole node's memory
DefMemPerCPU=1024
ReturnToService=2
KillWait=5
MinJobAge=300
StateSaveLocation=$CI_DIR/state
SlurmdSpoolDir=$CI_DIR/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=${NODE} NodeAddr=127.0.0.1 ${HW} State=UNKNOWN
PartitionName=${PARTITION} Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP
EOF
CONF_CHANGED=0
if ! cmp -s "$NEWCONF" "$CONF"; then
  [ -e "$CONF" ] && cp "$CONF" "$CONF.bak.$(date +%s)"
  mv "$NEWCONF" "$CONF"; chmod 644 "$CONF"; CONF_CHANGED=1
  log "wrote $CONF"
else
  rm -f "$NEWCONF"
fi

# --- 3. accounting: private MariaDB + slurmdbd ------------------------------------
if [ "$ACCT" = 1 ]; then
  DB=$CI_DIR/mysqldb
  SOCK=$RUN/mysql/mysqld.sock
  install -d -o mysql -g mysql -m 755 "$RUN/mysql"
  touch "$LOG/mariadb.log"; chown mysql:mysql "$LOG/mariadb.log"
  cat > "$CI_DIR/my.cnf" <<EOF
[mysqld]
user=mysql
datadir=$DB
socket=$SOCK
pid-file=$RUN/mysql/mysqld.pid
log-error=$LOG/mariadb.log
bind-address=127.0.0.1
port=$DB_PORT
skip-name-resolve
performance_schema=OFF
# values slurmdbd checks for (it logs an error below half of them)
innodb_buffer_pool_size=512M
innodb_log_file_size=64M
innodb_lock_wait_timeout=900
EOF
  if [ ! -d "$DB/mysql" ]; then
    log "initialising MariaDB datadir $DB"
    install -d -o mysql -g mysql -m 750 "$DB"
    mariadb-install-db --defaults-file="$CI_DIR/my.cnf" --auth-root-authentication-method=socket \
      --skip-test-db >"$LOG/mariadb-install-db.log" 2>&1 || { tail -20 "$LOG/mariadb-install-db.log" >&2; die "mariadb-install-db failed"; }
    # a fresh DB does not know the cluster id saved by an old slurmctld state
    rm -f "$CI_DIR/state/clustername"
  fi
  if alive "$RUN/mysql/mysqld.pid" mariadbd; then
    log "mariadbd already running (pid $(cat "$RUN/mysql/mysqld.pid"))"
  else
    log "starting mariadbd on 127.0.0.1:$DB_PORT"
    # mariadbd has no daemon mode: setsid -f forks it off into its own session
    (cd / && detach "$LOG/mariadb.log" setsid -f mariadbd --defaults-file="$CI_DIR/my.cnf")
    wait_for "$WAIT_S" mariadb --socket="$SOCK" -uroot -e 'select 1' || { tail -20 "$LOG/mariadb.log" >&2; die "mariadbd did not start"; }
  fi
  [ -s "$CI_DIR/dbpass" ] || { head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$CI_DIR/dbpass"; chmod 600 "$CI_DIR/dbpass"; }
  DBPASS=$(cat "$CI_DIR/dbpass")
  mariadb --socket="$SOCK" -uroot <<EOF
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DBPASS';
ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$DBPASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
EOF
  NEWDBD=$(mktemp)
  cat > "$NEWDBD" <<EOF
# written by start-slurm.sh
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DBPASS
StorageLoc=slurm_acct_db
EOF
  cmp -s "$NEWDBD" "$DBDCONF" || { mv "$NEWDBD" "$DBDCONF"; log "wrote $DBDCONF"; }
  rm -f "$NEWDBD"; chmod 600 "$DBDCONF"     # slurmdbd refuses a group/world-readable file
  if alive "$RUN/slurmdbd.pid" slurmdbd; then
    log "slurmdbd already running (pid $(cat "$RUN/slurmdbd.pid"))"
  else
    log "starting slurmdbd"
    detach "$LOG/daemons.out" slurmdbd
  fi
  wait_for "$WAIT_S" sacctmgr -n list cluster || { tail -20 "$LOG/slurmdbd.log" >&2; die "slurmdbd not answering"; }
  if [ -z "$(sacctmgr -n -P list cluster format=cluster where cluster=ci)" ]; then
    log "registering cluster 'ci' in slurmdbd"
    sacctmgr -i add cluster ci >/dev/null
  fi
fi

# --- 4. slurmctld + slurmd ----------------------------------------------------------
if alive "$RUN/slurmctld.pid" slurmctld; then
  log "slurmctld already running (pid $(cat "$RUN/slurmctld.pid"))"
  if [ "$CONF_CHANGED" = 1 ]; then log "config changed: scontrol reconfigure"; scontrol reconfigure || true; fi
else
  log "starting slurmctld"
  detach "$LOG/daemons.out" slurmctld -i   # -i: ignore state files that no longer fit the config
fi
ctld_up() { scontrol ping | grep -q 'is UP'; }
wait_for "$WAIT_S" ctld_up || { tail -20 "$LOG/slurmctld.log" >&2; die "slurmctld not answering"; }

if alive "$RUN/slurmd.pid" slurmd; then
  log "slurmd already running (pid $(cat "$RUN/slurmd.pid"))"
else
  log "starting slurmd"
  detach "$LOG/daemons.out" slurmd -N "$NODE"
fi

# --- 5. wait for the node ---------------------------------------------------------
state=""
for _ in $(seq $(( WAIT_S * 5 ))); do
  state=$(sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -1)
  case "$state" in idle|mixed|allocated|completing) break;; esac
  # a node left DOWN/DRAINED by an earlier run: bring it back
  case "$state" in down*|drain*) scontrol update nodename="$NODE" state=resume 2>/dev/null || true;; esac
  sleep 0.2
done
case "$state" in
  idle|mixed|allocated|completing) ;;
  *) sinfo -N -l >&2; scontrol show node "$NODE" | grep -i reason >&2; die "node $NODE not ready (state '$state')";;
esac
log "node $NODE is $state; partition $PARTITION ready; accounting=$ACCT"
sinfo
echo "SLURM ready in $(elapsed) s"
