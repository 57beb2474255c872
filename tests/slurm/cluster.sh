#!/usr/bin/env bash
# tests/slurm/cluster.sh start|stop DIR - a one-node Slurm cluster on this machine for the sweep
# test (and for trying `deno task sweep --executor slurm` on a workstation). Needs root and
# Debian's slurmctld, slurmd, slurm-client and munge (.ci/run installs them). `start` writes
# DIR/slurm.conf for localhost with this machine's CPUs, starts munged (if none answers),
# slurmctld and slurmd, and waits until the node is idle; `stop` cancels every job and stops
# what `start` started (by the pid files in DIR). Exit 3: Slurm is not installed (the test skips).
set -euo pipefail
cmd=${1:?usage: cluster.sh start|stop DIR}
DIR=$(realpath -m "${2:?usage: cluster.sh start|stop DIR}")
export SLURM_CONF=$DIR/slurm.conf

is_ours() { # pidfile program: the process is alive, not a zombie, and that program
  [ -s "$1" ] || return 1
  local pid; pid=$(cat "$1")
  [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = "$2" ] && ! ps -o stat= -p "$pid" | grep -q Z
}

stop_one() { # name
  local f=$DIR/$1.pid
  if is_ours "$f" "$1"; then
    kill -TERM "$(cat "$f")"
    for _ in $(seq 40); do is_ours "$f" "$1" || break; sleep 0.25; done
    is_ours "$f" "$1" && kill -KILL "$(cat "$f")"
  fi
  rm -f "$f"
}

case $cmd in
start)
  for p in slurmctld slurmd sbatch squeue munged; do
    command -v "$p" >/dev/null || { echo "cluster.sh: $p is not installed" >&2; exit 3; }
  done
  [ "$(id -u)" = 0 ] || { echo "cluster.sh: needs root (slurmd runs jobs as any user)" >&2; exit 3; }
  mkdir -p "$DIR/state" "$DIR/spool"
  # munge: a key readable only by munge, and the socket directory /run loses at boot
  [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge /etc/munge/munge.key
  chmod 0700 /etc/munge
  chmod 0400 /etc/munge/munge.key
  install -d -o munge -g munge -m 0755 /run/munge
  if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
    cp /run/munge/munged.pid "$DIR/munged.pid"
  fi
  host=$(hostname -s)
  cat >"$SLURM_CONF" <<EOF
ClusterName=qgt-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
MailProg=/bin/true
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=3600
DependencyParameters=kill_invalid_depend
NodeName=$host NodeAddr=127.0.0.1 $(slurmd -C | head -1 | cut -d' ' -f2-)
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  is_ours "$DIR/slurmctld.pid" slurmctld || slurmctld -f "$SLURM_CONF"
  is_ours "$DIR/slurmd.pid" slurmd || slurmd -f "$SLURM_CONF"
  for _ in $(seq 120); do
    [ "$(sinfo -h -n "$host" -o %T 2>/dev/null)" = idle ] && exit 0
    sleep 0.5
  done
  echo "cluster.sh: the node is not idle after 60 s: $(sinfo -h -o '%T %E' 2>&1 | head -1)" >&2
  tail -n 5 "$DIR/slurmctld.log" "$DIR/slurmd.log" >&2 || true
  exit 1
  ;;
stop)
  if is_ours "$DIR/slurmctld.pid" slurmctld; then
    squeue -h -o %A | sort -u | xargs -r scancel || true
    for _ in $(seq 40); do squeue -h 2>/dev/null | grep -q . || break; sleep 0.25; done
  fi
  stop_one slurmd
  stop_one slurmctld
  stop_one munged
  ;;
*)
  echo "usage: cluster.sh start|stop DIR" >&2
  exit 2
  ;;
esac
