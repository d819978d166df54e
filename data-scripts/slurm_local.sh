#!/usr/bin/env bash
# A one-node Slurm on this machine for the sweep tests (tests/sweep_slurm.rs):
#   bash data-scripts/slurm_local.sh install   # Debian's slurm-wlm and munge, when missing
#   bash data-scripts/slurm_local.sh start     # munged, slurmctld, slurmd; waits for `idle`
#   bash data-scripts/slurm_local.sh stop      # stops the three, leaves nothing running
# State, logs and the config live in ${SLURM_LOCAL_DIR:-/tmp/sslbench-slurm}. Accounting:
# no slurmdbd; job completions go to jobcomp/filetxt, which `sacct --completion` reads.
set -euo pipefail
dir=${SLURM_LOCAL_DIR:-/tmp/sslbench-slurm}
conf=/etc/slurm/slurm.conf
cpus=${SLURM_LOCAL_CPUS:-2}

install() {
    if command -v sbatch >/dev/null && command -v munged >/dev/null; then
        return
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null
}

start() {
    host=$(hostname -s)
    mkdir -p "$dir"/{ctld,d,log} /etc/slurm /run/munge /var/log/munge /var/lib/munge
    chown -R munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge 2>/dev/null || true
    [ -s /etc/munge/munge.key ] || {
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
        chown munge:munge /etc/munge/munge.key
        chmod 400 /etc/munge/munge.key
    }
    cat >"$conf" <<CONF
ClusterName=sslbench
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/ctld
SlurmdSpoolDir=$dir/d
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
SchedulerParameters=defer_batch
MinJobAge=600
KillWait=5
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    pgrep -x munged >/dev/null || munged --force
    slurmctld
    slurmd
    for _ in $(seq 60); do
        if sinfo -h -o %T 2>/dev/null | grep -qx idle; then
            echo "slurm: node $host idle"
            return
        fi
        sleep 1
    done
    echo "slurm: the node did not come up; logs in $dir/log" >&2
    tail -n 20 "$dir"/log/*.log >&2 || true
    exit 1
}

stop() {
    for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid"; do
        if [ -s "$pidfile" ]; then
            kill "$(cat "$pidfile")" 2>/dev/null || true
        fi
    done
    if [ -s /run/munge/munged.pid ]; then
        kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
    fi
    for _ in $(seq 20); do
        left=0
        for d in slurmd slurmctld munged; do
            if pgrep -x "$d" >/dev/null; then left=1; fi
        done
        [ "$left" = 1 ] || return 0
        sleep 0.5
    done
    echo "slurm: daemons still running" >&2
    exit 1
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop ;;
*) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
