"""Boot the Debian kernel under qemu with one translated trace; collect its output.

In: ``fetch.Artifacts``, a ``translate.Script`` and a work directory.
Out: ``BootResult`` — the text the VM's init wrote to its second serial port
(``KC ...`` stat lines, see init.sh), the console log, the accelerator used
and the wall time.

Accelerator: KVM when ``/dev/kvm`` is usable and a probe boot under it reaches
our init; otherwise TCG (software emulation).  On this machine kind /dev/kvm
exists but a stock kernel does not boot under nested KVM, so the probe's
verdict is cached (per host kernel) and later runs go straight to TCG.

Disks: /dev/vda is a fresh ext4 image made with mkfs.ext4 on the host (a file
in the work dir, never a host device); /dev/vdb is a blank spare for swap.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scripts.kernel_check import initramfs
from scripts.kernel_check.fetch import Artifacts
from scripts.kernel_check.translate import Script

MIB = 1 << 20
VM_MEM_MIB = 512  #: guest RAM; scenarios stay far below it, so global reclaim never runs
DISK_MIB = 256
KVM_PROBE_S = 45.0


@dataclass(frozen=True)
class BootResult:
    """What one boot produced."""

    output: str  #: ttyS1: the KC lines
    console: str  #: ttyS0: kernel log and init's own messages
    accel: str
    seconds: float
    release: str


def _make_disks(work: Path, swap_bytes: int, files: dict[str, int] | None = None) -> tuple[Path, Path]:
    """The ext4 image (holding ``files``: VM path under /mnt/disk -> size, sparse) and the swap disk."""
    disk, swap = work / "disk.img", work / "swap.img"
    for p in (disk, swap):
        p.unlink(missing_ok=True)
    with open(disk, "wb") as f:
        f.truncate(DISK_MIB * MIB)
    root = work / "disk-root"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    for path, size in sorted((files or {}).items()):
        host = root / path.removeprefix("/mnt/disk/")
        host.parent.mkdir(parents=True, exist_ok=True)
        with open(host, "wb") as f:
            f.truncate(size)
    proc = subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "nodiscard", "-d", str(root), str(disk)],
                          capture_output=True, text=True)
    shutil.rmtree(root, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"mkfs.ext4 {disk}: {proc.stderr.strip()}")
    with open(swap, "wb") as f:
        f.truncate(max(swap_bytes + MIB, 16 * MIB))
    return disk, swap


def qemu_command(art: Artifacts, initrd: Path, disk: Path, swap: Path, work: Path, accel: str,
                 extra_append: str = "", possible_cpus: int = 1, mem_mib: int = VM_MEM_MIB,
                 numa_nodes: int = 1) -> list[str]:
    """The qemu-system-x86_64 argv for one boot (one vCPU: exact memcg stats and stock).

    ``extra_append`` adds kernel command-line options (experiments, e.g. ``cgroup_disable=io``).
    ``possible_cpus`` > 1 boots that many vCPUs (``-smp N``): possible CPUs size every percpu
    allocation (scripts/kernel_check/cost.py). Hot-pluggable ones (``-smp 1,maxcpus=N``) would
    keep one online, but 6.12 does not count qemu's not-enabled MADT entries as possible.
    ``numa_nodes`` > 1 splits the RAM and the vCPUs evenly into that many NUMA nodes.
    """
    cpu = ["-cpu", "max"]
    smp = str(max(possible_cpus, 1))
    numa: list[str] = []
    if numa_nodes > 1:
        mem_mib -= mem_mib % numa_nodes
        for n in range(numa_nodes):
            cpus = [c for c in range(max(possible_cpus, 1)) if c % numa_nodes == n]
            numa += ["-object", f"memory-backend-ram,id=m{n},size={mem_mib // numa_nodes}M",
                     "-numa", f"node,nodeid={n},memdev=m{n}" + "".join(f",cpus={c}" for c in cpus)]
    return [
        "qemu-system-x86_64", "-accel", accel, *cpu, "-smp", smp, "-m", str(mem_mib), *numa,
        "-kernel", str(art.vmlinuz), "-initrd", str(initrd),
        "-append", "console=ttyS0 panic=-1 transparent_hugepage=never loglevel=4 " + extra_append,
        "-drive", f"file={disk},format=raw,if=virtio",
        "-drive", f"file={swap},format=raw,if=virtio",
        "-display", "none", "-monitor", "none", "-no-reboot", "-nodefaults",
        "-serial", f"file:{work / 'console.log'}",
        "-serial", f"file:{work / 'out.log'}",
    ]


def _boot(cmd: list[str], work: Path, timeout: float, idle_s: float | None = None) -> tuple[bool, float]:
    """Run qemu until it exits, ``timeout`` seconds pass, or (``idle_s``) neither of its serial
    logs (``console.log``, ``out.log`` in ``work``) has grown for ``idle_s`` seconds: a guest hung
    in a step, which would otherwise hold the VM until the whole boot's timeout. True if the
    guest powered off by itself."""
    start = time.monotonic()
    logs = (work / "console.log", work / "out.log")
    with open(work / "qemu.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        seen, since = (-1, -1), start
        while True:
            try:
                proc.wait(timeout=min(1.0, timeout) if idle_s is not None else timeout)
                break
            except subprocess.TimeoutExpired:
                now = time.monotonic()
                sizes = tuple(f.stat().st_size if f.exists() else -1 for f in logs)
                if sizes != seen:
                    seen, since = sizes, now
                if now - start >= timeout or (idle_s is not None and now - since >= idle_s):
                    proc.kill()
                    proc.wait()
                    return False, now - start
    return proc.returncode == 0, time.monotonic() - start


def _read(path: Path) -> str:
    return path.read_text(errors="replace").replace("\r", "") if path.exists() else ""


def kvm_usable(cache: Path, art: Artifacts, work: Path) -> bool:
    """Probe once whether this kernel boots under KVM here; the verdict is cached."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    stamp = cache / f"kvm-verdict-{platform.release()}-{art.release}"
    if stamp.exists():
        return stamp.read_text().strip() == "yes"
    probe = work / "kvm-probe"
    probe.mkdir(parents=True, exist_ok=True)
    ok = _run_once(art, Script("kvm-probe"), probe, "kvm", KVM_PROBE_S).output.find("KC-END") >= 0
    stamp.write_text("yes\n" if ok else "no\n")
    return ok


@contextlib.contextmanager
def work_lock(work: Path, blocking: bool = True) -> Iterator[None]:
    """Hold ``work``'s lock (``work/.lock``, flock) while a VM uses the disk images and logs there.

    Two kernel_check processes on one kernel series share a work directory (the cache's
    ``work/<series>``, ``work/random-<series>``): without the lock one rewrote the other's
    ``disk.img`` under a running VM, and its traces saw mkdirs fail that had succeeded. The
    second process now waits (one line on stderr says so). ``blocking=False`` raises
    ``BlockingIOError`` instead of waiting.
    """
    work.mkdir(parents=True, exist_ok=True)
    with open(work / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not blocking:
                raise
            print(f"kernel_check: waiting for another run using {work}", file=sys.stderr, flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run_once(art: Artifacts, script: Script, work: Path, accel: str, timeout: float,
              rendered: str | None = None, possible_cpus: int = 1, mem_mib: int = VM_MEM_MIB,
              numa_nodes: int = 1, idle_s: float | None = None) -> BootResult:
    """Boot once in ``work`` (holding its lock, ``work_lock``) and return what the VM printed."""
    with work_lock(work):
        return _boot_in(art, script, work, accel, timeout, rendered, possible_cpus, mem_mib, numa_nodes,
                        idle_s)


def _boot_in(art: Artifacts, script: Script, work: Path, accel: str, timeout: float, rendered: str | None,
             possible_cpus: int, mem_mib: int, numa_nodes: int, idle_s: float | None = None) -> BootResult:
    for name in ("console.log", "out.log"):
        (work / name).unlink(missing_ok=True)
    initrd = work / "initrd.gz"
    initrd.write_bytes(initramfs.build(art, script.render() if rendered is None else rendered))
    disk, swap = _make_disks(work, script.swap_bytes, script.disk_files)
    cmd = qemu_command(art, initrd, disk, swap, work, accel, os.environ.get("MEMCG_REPLAY_KC_APPEND", ""),
                       possible_cpus, mem_mib, numa_nodes)
    _, seconds = _boot(cmd, work, timeout, idle_s)
    for p in (disk, swap):
        p.unlink(missing_ok=True)  # 256 MiB sparse images: do not leave them behind
    return BootResult(_read(work / "out.log"), _read(work / "console.log"), accel, seconds, art.release)


def run_script(art: Artifacts, script: Script, work: Path, cache: Path, accel: str = "auto",
               timeout: float = 600.0, rendered: str | None = None, possible_cpus: int = 1,
               mem_mib: int = VM_MEM_MIB, numa_nodes: int = 1, idle_s: float | None = None) -> BootResult:
    """Boot once and run ``script``; ``accel`` is "auto", "kvm" or "tcg".

    ``rendered`` replaces ``script.render()`` as the VM's steps (a batch of traces,
    ``randomized.render_batch``, or the cost measurement); ``script`` then only sizes the
    swap disk. ``possible_cpus``, ``mem_mib`` and ``numa_nodes`` size the guest (``qemu_command``).
    ``idle_s``: stop a guest that printed nothing for that long (``_boot``).
    """
    if accel == "auto":
        accel = "kvm" if kvm_usable(cache, art, work) else "tcg"
    return _run_once(art, script, work, accel, timeout, rendered, possible_cpus, mem_mib, numa_nodes,
                     idle_s)
