#!/bin/busybox sh
# memcg-replay kernel-check: /init of the VM (busybox ash, PID 1).
#
# In: /kc/modules.txt (kernel modules to insmod, in dependency order) and
#     /kc/steps.sh (a translated trace: kc_step N; <shell>; kc_done N per row).
# Out: on /dev/ttyS1 (a file on the host), one line per stat after each step:
#     "KC <step> <cgroup path> <key> <value>", plus "KC <step> / rc <status>";
#     "KC-BEGIN <uname -r>" first and "KC-END" last.
# Everything happens in the VM's own cgroup2 mount; the host's cgroups are never seen.

/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /run /mnt/tmpfs /mnt/disk /sys/fs/cgroup
mount -t tmpfs run /run
mkdir -p /run/kc

exec 3>/dev/ttyS1
stty -F /dev/ttyS1 raw -echo 2>/dev/null
CG=/sys/fs/cgroup

kc_fatal() { echo "KC-FATAL $*" >&3; echo "kernel-check: $*"; poweroff -f; }

while read -r mod; do
    [ -n "$mod" ] && { insmod "/kc/modules/$mod" || kc_fatal "insmod $mod"; }
done < /kc/modules.txt
# the model counts 4 KiB pages; THP would charge 2 MiB for a single touched page
echo never > /sys/kernel/mm/transparent_hugepage/enabled
echo 0 > /proc/sys/kernel/printk 2>/dev/null

mount -t cgroup2 -o nsdelegate cgroup2 $CG || kc_fatal "mount cgroup2"
echo +memory > $CG/cgroup.subtree_control || kc_fatal "enable memory controller"
mount -t tmpfs -o size=90% kc-tmpfs /mnt/tmpfs || kc_fatal "mount tmpfs"
for i in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/vda ] && break; sleep 0.1; done
mount -t ext4 /dev/vda /mnt/disk || kc_fatal "mount ext4 /dev/vda"

RC=0
STEP=-1

# --- operations (each sets RC to the first failure's status) -----------------
kc_sh() { "$@" >/dev/null 2>&1 || RC=$?; }
kc_write() {
    case "$1" in /proc/*) f=$1 ;; *) f=$CG$1 ;; esac
    echo "$2" 2>/dev/null > "$f" || RC=1
}
kc_mkdir() {
    p=$(dirname "$1")
    if [ "$p" != / ] && ! grep -qw memory "$CG$p/cgroup.subtree_control"; then
        echo +memory > "$CG$p/cgroup.subtree_control" || RC=1
    fi
    mkdir "$CG$1" || RC=1
}
kc_rmdir() { rmdir "$CG$1" 2>/dev/null || RC=1; }
kc_task_start() {
    mkfifo /run/kc/$1.cmd /run/kc/$1.ack
    # the helper starts here (the root cgroup), faults and mlocks its own pages, and then
    # joins the task's cgroup before it answers: that cgroup is charged only with what the
    # trace's commands do, not with the helper's stack and data (helper.c, serve)
    /bin/helper serve /run/kc/$1.cmd /run/kc/$1.ack "$CG$2/cgroup.procs" &
    echo $! > /run/kc/$1.pid
    kc_ack /run/kc/$1.ack $!
    [ "$ack" = ok ] || RC=1
}
# a helper the OOM killer took: gone, or a zombie process nobody has reaped yet
kc_dead() {
    [ ! -d /proc/$1 ] || grep -q '^State:[[:space:]]*Z' /proc/$1/status
}
# kc_ack FIFO PID: read the helper's answer into $ack. busybox ash lets a signal (any child's
# SIGCHLD) interrupt the open of the FIFO (EINTR); the helper then still writes its answer, and the
# next command would read this one's: every later answer of the task one step late. So an
# interrupted open is retried while the helper lives; if it died (an OOM kill mid-command, or a
# subshell that never joined its cgroup) it never answers, and that is the answer.
kc_ack() {
    ack=
    while ! { read -r ack < "$1"; } 2>/dev/null; do
        if kc_dead "$2" || { sleep 0.05; kc_dead "$2"; }; then
            ack="none: the task died (OOM kill)"; return
        fi
    done
}
kc_cmd() {
    t=$1; shift
    [ -f /run/kc/$t.pid ] || { RC=1; return; }
    if kc_dead "$(cat /run/kc/$t.pid)"; then
        RC=1; echo "KC-LOG $STEP $t $* -> the task is gone (OOM-killed)" >&3; return
    fi
    echo "$*" > /run/kc/$t.cmd
    # killed mid-command, the helper never acks: the SIGCHLD interrupts the open (kc_ack)
    kc_ack /run/kc/$t.ack "$(cat /run/kc/$t.pid)"
    [ "$ack" = ok ] || { RC=1; echo "KC-LOG $STEP $t $* -> $ack" >&3; }
}
kc_task_exit() {
    [ -f /run/kc/$1.pid ] || { RC=1; return; }
    pid=$(cat /run/kc/$1.pid)
    if kc_dead "$pid"; then  # the exit of a task the kernel killed: reap it, and say the op did nothing
        RC=1; echo "KC-LOG $STEP $1 exit -> the task is gone (OOM-killed)" >&3
    else
        kc_cmd "$1" exit
    fi
    wait "$pid"
    rm -f /run/kc/$1.pid /run/kc/$1.cmd /run/kc/$1.ack
}
kc_task_move() {
    [ -f /run/kc/$1.pid ] || { RC=1; return; }
    cat /run/kc/$1.pid > "$CG$2/cgroup.procs" || RC=1
}
# the socket holder (helper hold): in the root cgroup, started on a trace's first sock_open
kc_holder() {
    [ -S /run/kc/holder.sock ] && return
    /bin/helper hold /run/kc/holder.sock &
    echo $! > /run/kc/holder.pid
    for i in $(seq 100); do [ -S /run/kc/holder.sock ] && return; sleep 0.01; done
    RC=1
}
kc_swapon() {
    swapoff /dev/vdb >/dev/null 2>&1
    mkswap /dev/vdb "$1" >/dev/null 2>&1 && swapon /dev/vdb || RC=1
}
kc_swapoff() { swapoff /dev/vdb || RC=1; }
# the ext4 disk's atime option (relatime is Linux's default): a scenario named *_noatime etc.
kc_mount_disk() {
    umount /mnt/disk && mount -t ext4 -o "$1" /dev/vda /mnt/disk || kc_fatal "mount ext4 -o $1"
}
# drop_caches skips folios that a per-CPU cache still references (the LRU folio
# batches, the buffer-head LRU), so the last pages a task touched can survive it
# and pin a zombie until some later drain.  On a busy host those caches turn over
# in milliseconds; the idle VM would keep them forever.  Compaction drains them
# (lru_add_drain), so drop what a settled kernel would drop.
# "kc_drop_caches 3" (drop_caches with flag inodes) also evicts unused dentries and inodes.
kc_drop_caches() {
    echo 1 > /proc/sys/vm/compact_memory
    echo "${1:-1}" > /proc/sys/vm/drop_caches || RC=1
}

# --- observation ---------------------------------------------------------------
# Offlining and freeing a memcg is asynchronous (workqueue + RCU): wait until the
# root's cgroup.stat has been unchanged for three reads 50 ms apart (at most 3 s).
kc_settle() {
    prev=; same=0; n=0
    while [ $same -lt 3 ] && [ $n -lt 60 ]; do
        cur=$(cat $CG/cgroup.stat)
        if [ "$cur" = "$prev" ]; then same=$((same + 1)); else same=0; fi
        prev=$cur; n=$((n + 1)); sleep 0.05
    done
}
kc_dump() {
    # reading cpu.stat runs a full rstat flush, so memory.stat below is exact, not
    # up to MEMCG_CHARGE_BATCH pages stale
    cat $CG/cpu.stat > /dev/null
    for d in $(find $CG -type d | sort); do
        p=${d#$CG}; [ -n "$p" ] || p=/
        for f in memory.current memory.swap.current; do
            [ -f $d/$f ] && echo "KC $1 $p $f $(cat $d/$f)"
        done
        [ -f $d/memory.stat ] && awk -v s="$1" -v p="$p" '{print "KC", s, p, $1, $2}' $d/memory.stat
        awk -v s="$1" -v p="$p" '{print "KC", s, p, $1, $2}' $d/cgroup.stat
    done
    echo "KC $1 / rc $RC"
}
kc_step() { STEP=$1; RC=0; }
kc_done() { kc_settle; kc_dump "$1" >&3; }

# kc_pcp_free: bytes of free pages on the per-CPU page lists (the "count:" of every zone's
# pagesets in /proc/zoneinfo). MemFree (NR_FREE_PAGES) leaves them out, and how many there
# are at boot varies: 1.9-11.1 MB over 76 boots of 6.12.118, whose per-CPU lists size
# themselves (pcp->high tuned since v6.7), against 1.7-2.6 MB on 6.1.192; MemFree plus them
# stayed within 0.35 MB (scripts/kernel_check/run.py model_result sizes the model with both)
kc_pcp_free() {
    awk '$1 == "count:" {c += $2} END {print c * 4096}' /proc/zoneinfo
}
# --- many traces per boot (scripts/kernel_check/randomized.py) ---------------------
# kc_trace_begin N ... kc_trace_end N frame trace N; its output lies between
# "KC-TRACE N" and "KC-TRACE-END N", with its own baseline (step -1) and free memory.
# A batch's traces run far longer in wall time than their rows say (microseconds apart),
# so the periodic flusher is off: dirty page cache stays dirty until sync, as in the model.
kc_trace_begin() {
    echo 0 > /proc/sys/vm/dirty_writeback_centisecs
    echo "KC-TRACE $1" >&3
    echo "KC-INFO mem $(awk '/^MemFree:/ {print $2 * 1024}' /proc/meminfo)" \
         "$(awk '$1 == "low" {l += $2} $1 == "high" {h += $2} END {print l, h}' /proc/zoneinfo)" \
         "$(kc_pcp_free)" >&3
    kc_done -1
}
# Reset: every helper killed and reaped, the socket holder closed, tmpfs emptied, the ext4
# disk's files deleted and the disk mounted again (every inode evicted), swap off, every
# cgroup removed; then wait (at most 5 s) until the root has no dying descendants. A reset
# that leaves one would skew the next trace: say so and power off (the host reruns the rest).
kc_trace_end() {
    for f in /run/kc/t*.pid /run/kc/holder.pid; do
        [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
    done
    for f in /run/kc/t*.pid /run/kc/holder.pid; do
        [ -f "$f" ] && wait "$(cat "$f")" 2>/dev/null
    done
    rm -f /run/kc/t* /run/kc/holder.pid /run/kc/holder.sock
    rm -f /mnt/tmpfs/*
    rm -rf "/mnt/disk/$1"
    swapoff /dev/vdb >/dev/null 2>&1
    umount /mnt/disk && mount -t ext4 /dev/vda /mnt/disk || kc_fatal "remount ext4 after trace $1"
    for d in $(find $CG -mindepth 1 -type d | sort -r); do rmdir "$d" 2>/dev/null; done
    echo 1 > /proc/sys/vm/compact_memory
    echo 3 > /proc/sys/vm/drop_caches
    n=0
    while [ $n -lt 100 ] && ! grep -q '^nr_dying_descendants 0$' $CG/cgroup.stat; do
        sleep 0.05; n=$((n + 1))
    done
    if grep -q '^nr_dying_descendants 0$' $CG/cgroup.stat && [ -z "$(find $CG -mindepth 1 -type d)" ]; then
        echo "KC-TRACE-END $1" >&3
    else
        echo "KC-RESET-FAIL $1 $(tr '\n' ' ' < $CG/cgroup.stat)" >&3
        echo "KC-END" >&3
        sync
        poweroff -f
    fi
}

echo "KC-BEGIN $(uname -r)" >&3
echo "KC-INFO lru_gen $(cat /sys/kernel/mm/lru_gen/enabled 2>/dev/null)" >&3
# what the model needs to size its machine like this VM: free pages, the zones' watermarks, and
# the free pages on the per-CPU lists (not in MemFree; kc_pcp_free)
echo "KC-INFO mem $(awk '/^MemFree:/ {print $2 * 1024}' /proc/meminfo)" \
     "$(awk '$1 == "low" {l += $2} $1 == "high" {h += $2} END {print l, h}' /proc/zoneinfo)" \
     "$(kc_pcp_free)" >&3
kc_done -1
. /kc/steps.sh
echo "KC-END" >&3
sync
poweroff -f
