"""The trace's ops: one handler per op, each resolving names to slots and calling the
kernel-named modules (``core.machine`` dispatches on ``Op`` through ``OP_TABLE``).

In: the machine state and one decoded ``TraceEvent``. Out: the op's effect on the state.
Runtime outcomes a real kernel would report (ENOSPC, EBUSY, OOM kills, failed charges,
ops of killed tasks) are counted in ``counters``; a trace that contradicts itself raises
``TraceError`` naming file, row and field. Each handler cites what it stands for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.cgroup import css_put
from core.events import NULL, TraceEvent
from core.fs_writeback import file_update_time, inode_attach_wb, ksys_sync, set_inode_times, touch_atime
from core.kmem import kmem_free, kmem_new
from core.memcg import ROOT, Errno
from core.memcontrol import (
    mem_cgroup_css_offline,
    mem_cgroup_handle_over_high,
    memory_high_write,
    memory_max_write,
    memory_reclaim,
    try_charge_memcg,
)
from core.memory import fault_range
from core.ops import Flag
from core.page_counter import nr_free_pages
from core.pages import PAGE, Kind, pages_of
from core.rmap import add_count, map_object, munlock_range, unmap_object, unpin_user_pages
from core.swapfile import try_to_unuse
from core.task import do_exit, new_task_slot
from core.truncate import drop_pagecache, free_if_unused, free_object, free_range, prune_icache_sb
from core.vmscan import try_to_free_mem_cgroup_pages

try:
    import cython
except ImportError:  # no Cython: the pure model needs only ``cython.compiled``
    from core import _cyshim as cython

if TYPE_CHECKING:
    from core.state import MachineState

# plain ints for the per-event paths: an IntEnum member lookup costs about 160 ns in Python 3.11
_ANON, _FILE, _SHMEM_KIND = int(Kind.ANON), int(Kind.FILE), int(Kind.SHMEM)
_MAX = int(Flag.MAX)
_HIGH = int(Flag.HIGH)
_MAYFAIL = int(Flag.MAYFAIL)
_SHMEM = int(Flag.SHMEM)
_MLOCK = int(Flag.MLOCK)
_PAGE = int(Flag.PAGE)
_INODES = int(Flag.INODES)
_OK, _ENOSPC = int(Errno.OK), int(Errno.ENOSPC)
_READ, _WRITE, _MAP = 0, 1, 2  # _file_access's kinds of access (Policy.on_access gets their names)


def op_mkdir(machine: MachineState, ev: TraceEvent) -> None:
    path = ev.need_cgroup()  # canonical already (Machine.apply)
    parent = path.rsplit("/", 1)[0] or "/"
    if parent in machine.failed_cgroups:
        machine.failed_cgroups.add(path)
        machine.counters["mkdir_failed"] += 1
        return
    err, m = machine.mem.mkdir(path, machine.now_us)
    if err == _ENOSPC:
        machine.failed_cgroups.add(path)
        machine.counters["mkdir_enospc"] += 1
    elif err != _OK:
        raise ev.error("cgroup", f"mkdir {path}: {err.name}")
    else:
        machine.failed_cgroups.discard(path)


def op_rmdir(machine: MachineState, ev: TraceEvent) -> None:
    m = _cgroup(machine, ev)
    if m < 0:
        return
    if m == ROOT:
        raise ev.error("cgroup", "cannot remove the root cgroup")
    if machine.mem.rmdir_check(m) != _OK:
        machine.counters["rmdir_ebusy"] += 1
        return
    machine.policy.pre_rmdir(machine, m)
    if machine.mem.rmdir_check(m) != _OK:  # a policy may not add tasks, but be safe
        machine.counters["rmdir_ebusy"] += 1
        return
    mem_cgroup_css_offline(machine, m)


def op_set_limit(machine: MachineState, ev: TraceEvent) -> None:
    m = _cgroup(machine, ev)
    if m < 0:
        return
    if m == ROOT:
        raise ev.error("cgroup", "the root cgroup has no memory.max or memory.high")
    limit = (1 << 62) if ev.nbytes == NULL else pages_of(ev.nbytes)
    if ev.flags & _MAX:
        machine.mem.max[m] = limit
        memory_max_write(machine, m)
    elif ev.flags & _HIGH:
        machine.mem.high[m] = limit
        memory_high_write(machine, m)
    else:
        raise ev.error("flags", "set_limit needs flag max or high")


def op_task_start(machine: MachineState, ev: TraceEvent) -> None:
    name = ev.need_task()
    if name in machine.task_by_name:
        raise ev.error("task", f"task {name} started twice")
    path = ev.need_cgroup()  # canonical already (Machine.apply)
    m = machine.mem.by_path.get(path, -1)
    new_task_slot(machine, name, m)
    if m < 0:
        if path not in machine.failed_cgroups:
            raise ev.error("cgroup", f"task_start into missing cgroup {path}")
        machine.counters["tasks_failed"] += 1
        return
    machine.mem.ntasks[m] += 1


def op_task_exit(machine: MachineState, ev: TraceEvent) -> None:
    t = _task(machine, ev)
    if t >= 0:
        do_exit(machine, t)
    else:  # killed earlier or never started: its exit is now recorded and its slot free
        assert ev.task is not None  # _task raised for a row without a task
        t = machine.task_by_name.pop(ev.task)
        machine.t_killed.discard(t)
        machine.free_tasks.append(t)


def op_task_move(machine: MachineState, ev: TraceEvent) -> None:
    t = _task(machine, ev)
    if t < 0:
        return
    m = _cgroup(machine, ev)
    if m < 0:
        return
    machine.mem.ntasks[machine.t_cg[t]] -= 1
    machine.mem.ntasks[m] += 1
    machine.t_cg[t] = m  # charges stay where they are (cgroup-v2.rst, Memory Ownership)


def op_anon_alloc(machine: MachineState, ev: TraceEvent) -> None:
    t = _task(machine, ev)
    if t < 0:
        return
    name = ev.need_object()
    o = machine.obj_by_name.get(name, -1)
    if o < 0:
        o = _new_object(machine, name, _ANON, 0, t)
        machine.t_regions[t].add(o)
    elif machine.o_kind[o] != _ANON or machine.o_owner[o] != t:
        raise ev.error("object", f"{name} is not an anon region of task {ev.task}")
    lo = machine.o_size[o]
    hi = lo + pages_of(ev.need_bytes())
    machine.o_size[o] = hi
    if not fault_range(machine, t, o, lo, hi, bool(ev.flags & _MAYFAIL)):
        if machine.o_alive[o]:
            machine.o_size[o] = max(lo, _object_end(machine, o))


def op_anon_free(machine: MachineState, ev: TraceEvent) -> None:
    t = _task(machine, ev)
    if t < 0:
        return
    o = _object(machine, ev)
    if machine.o_kind[o] != _ANON or machine.o_owner[o] != t:
        raise ev.error("object", f"{ev.obj} is not an anon region of task {ev.task}")
    if ev.nbytes == NULL and ev.offset in (NULL, 0):
        free_object(machine, o)  # the region is gone (munmap of the whole VMA)
    else:
        lo, hi = ev.range(machine.o_size[o])
        for pin in [p for p in machine.t_pins[t] if p[0] == o and p[1] < hi and lo < p[2]]:
            if not munlock_range(machine, t, pin, lo, hi):  # munmap drops the mlock / pin of what it unmaps,
                machine.dropped_pins.add((t, o, pin[3], pin[4]))  # and if nothing is left the trace's unpin is a no-op
        free_range(machine, o, lo, hi)  # a hole; the region may grow again


def op_file_create(machine: MachineState, ev: TraceEvent) -> None:
    name = ev.need_object()
    if name in machine.obj_by_name:
        raise ev.error("object", f"object {name} already exists")
    kind = _SHMEM_KIND if ev.flags & _SHMEM else _FILE
    size = 0 if ev.nbytes == NULL else pages_of(ev.nbytes)
    o = _new_object(machine, name, kind, size, -1)
    if kind == _FILE:  # created now: atime = mtime (so relatime updates atime at the first read)
        set_inode_times(machine, o, machine.now_us, machine.now_us)


def op_file_write(machine: MachineState, ev: TraceEvent) -> None:
    _file_access(machine, ev, _WRITE)


def op_file_map(machine: MachineState, ev: TraceEvent) -> None:
    _file_access(machine, ev, _MAP)


def _file_access(machine: MachineState, ev: TraceEvent, how: cython.int = 0) -> None:  # 0: _READ
    # _task / _object inline for the common case (a live task, an existing object); anything else takes
    # the full lookup, which counts or raises (a row without a task or object finds nothing, then raises)
    t: cython.Py_ssize_t = machine.task_by_name.get(ev.task, -1)  # type: ignore[arg-type]  # None: see above
    if t < 0 or not machine.t_alive[t]:
        t = _task(machine, ev)
        if t < 0:
            return
    o: cython.Py_ssize_t = machine.obj_by_name.get(ev.obj, -1)  # type: ignore[arg-type]  # None: see above
    if o < 0:
        o = _object(machine, ev)
    kind: cython.int = machine.o_kind[o]
    if kind == _ANON:
        raise ev.error("object", f"{ev.obj} is an anon region, not a file")
    off: cython.longlong = ev.offset
    nb: cython.longlong = ev.nbytes
    if how == _WRITE:
        if nb < 0:
            ev.need_bytes()  # raises: a write needs a size
        if off < 0:  # NULL (or negative) offset: from the start
            off = 0
        lo: cython.longlong = off // 4096
        hi: cython.longlong = -(-(off + nb) // 4096)  # pages_of, inlined
        if hi > machine.o_size[o]:
            machine.o_size[o] = hi
    elif off >= 0 and nb >= 0:  # ev.range() inlined for the usual offset + bytes (NULL is negative)
        lo = off // 4096
        hi = -(-(off + nb) // 4096)  # pages_of
        size: cython.longlong = machine.o_size[o]
        if hi > size:
            hi = size
    else:
        lo, hi = ev.range(machine.o_size[o])
    if hi <= lo:  # a map of no page still holds the file until munmap (the VMA's vm_file)
        if how == _MAP:
            map_object(machine, t, o, lo, lo)
        if how != _WRITE and kind == _FILE:  # filemap_read / generic_file_mmap: file_accessed even so
            touch_atime(machine, t, o)
        return
    if how == _MAP:
        map_object(machine, t, o, lo, hi)
    holes = how != _READ or kind == _FILE
    if machine.wants_access:
        machine.policy.on_access(machine, o, lo, hi, machine.t_cg[t], ("read", "write", "map")[how])
    if how == _WRITE and kind == _FILE:  # the fault stamps the pages dirty
        stamp = machine.now_us // machine.age_quantum_us + 1  # 1 + the LRU quantum; 0 means clean
        if fault_range(machine, t, o, lo, hi, ev.flags & _MAYFAIL != 0, True, stamp):
            if machine.o_wb[o] < 0:
                inode_attach_wb(machine, t, o)
            file_update_time(machine, o)
    else:
        fault_range(machine, t, o, lo, hi, ev.flags & _MAYFAIL != 0, holes)
        if kind == _FILE:  # read or mmap: file_accessed -> touch_atime
            touch_atime(machine, t, o)

#: reads are the most frequent op: their handler is _file_access itself, no wrapper call
op_file_read = _file_access


def op_file_unmap(machine: MachineState, ev: TraceEvent) -> None:
    t = _task(machine, ev)
    if t < 0:
        return
    unmap_object(machine, t, _held_object(machine, ev, t))


def op_file_delete(machine: MachineState, ev: TraceEvent) -> None:
    o = _object(machine, ev)
    if machine.o_kind[o] == _ANON:
        raise ev.error("object", f"{ev.obj} is an anon region; use anon_free")
    machine.o_deleted[o] = True
    del machine.obj_by_name[machine.o_name[o]]
    free_if_unused(machine, o)


def op_pin(machine: MachineState, ev: TraceEvent) -> None:
    t = _task(machine, ev)
    if t < 0:
        return
    o = _object(machine, ev)
    lo, hi = ev.range(machine.o_size[o])
    mlock, key = 1 if ev.flags & _MLOCK else 0, (ev.offset, ev.nbytes)
    if hi > lo and not fault_range(machine, t, o, lo, hi, False, fill_holes=True) \
            or not machine.t_alive[t] or not machine.o_alive[o]:
        # the pages could not be made resident (a refused charge, e.g. an smemcg at its limit,
        # or an OOM kill): no pin, and the trace's unpin of it is then ignored, not an error
        if machine.t_alive[t]:
            machine.dropped_pins.add((t, o, mlock, key))
        return
    pin = (o, lo, hi, mlock, key)
    machine.t_pins[t].append(pin)
    machine.o_pins[o] += 1
    add_count(machine, o, lo, hi, "pinc", +1)


def op_unpin(machine: MachineState, ev: TraceEvent) -> None:
    t = _task(machine, ev)
    if t < 0:
        return
    o = _held_object(machine, ev, t)
    key = (ev.offset, ev.nbytes)
    mlock = 1 if ev.flags & _MLOCK else 0
    pins = [p for p in machine.t_pins[t] if p[0] == o and p[3] == mlock and p[4] == key]
    if not pins and (t, o, mlock, key) in machine.dropped_pins:
        machine.dropped_pins.discard((t, o, mlock, key))
        machine.counters["ops_ignored"] += 1
        return
    if not pins:
        raise ev.error("object", f"unpin of {ev.obj} (offset {ev.offset}, bytes {ev.nbytes}) "
                                 "without a matching pin")
    for pin in pins[:1] if not mlock else pins:  # an mlock range cut by anon_free: every piece left
        unpin_user_pages(machine, t, pin)


def op_kmem_alloc(machine: MachineState, ev: TraceEvent) -> None:
    t = _task(machine, ev)
    if t < 0:  # an OOM-killed task (or one that never started) made nothing: its kmem_free is ignored too
        machine.failed_kmem.add(ev.need_object())
        return
    name = ev.need_object()
    if name in machine.kmem_by_name:
        raise ev.error("object", f"kmem object {name} already exists")
    m = machine.t_cg[t]
    n = pages_of(ev.need_bytes())
    if not try_charge_memcg(machine, m, n, bool(ev.flags & _MAYFAIL), t):
        machine.failed_kmem.add(name)  # its kmem_free will be ignored
        return
    machine.reserved -= n
    kmem_new(machine, t, m, n, not (ev.flags & _PAGE), name)
    mem_cgroup_handle_over_high(machine, m)


def op_kmem_free(machine: MachineState, ev: TraceEvent) -> None:
    name = ev.need_object()
    k = machine.kmem_by_name.get(name, -1)
    if k < 0:
        if name in machine.failed_kmem:
            machine.failed_kmem.discard(name)
            machine.counters["ops_ignored"] += 1
            return
        raise ev.error("object", f"kmem object {name} does not exist")
    kmem_free(machine, k)


def op_sock_open(machine: MachineState, ev: TraceEvent) -> None:
    t = _task(machine, ev)
    if t < 0:  # an OOM-killed task (or one that never started) opened nothing: its sock_close is ignored too
        machine.failed_socks.add(ev.need_object())
        return
    name = ev.need_object()
    if name in machine.sock_by_name:
        raise ev.error("object", f"socket {name} is already open")
    m = machine.t_cg[t]
    if m == ROOT:  # mem_cgroup_sk_alloc(): a root task's socket gets no sk_memcg
        machine.sock_by_name[name] = (-1, 0)
        return
    n = 0 if ev.nbytes == NULL else pages_of(ev.nbytes)
    # mem_cgroup_charge_skmem(): a refused charge leaves the socket under memory pressure
    # (fewer buffers), never OOM-kills; socket buffers are kernel memory, not LRU pages
    if n and try_charge_memcg(machine, m, n, True, t):
        machine.reserved -= n
        machine.kmem_total += n
        machine.mem.sock[m] += n
    else:
        n = 0
    machine.mem.nsock[m] += 1  # css_tryget in mem_cgroup_sk_alloc()
    machine.sock_by_name[name] = (m, n)
    if n:
        mem_cgroup_handle_over_high(machine, m)


def op_sock_close(machine: MachineState, ev: TraceEvent) -> None:
    name = ev.need_object()
    got = machine.sock_by_name.pop(name, None)
    if got is None:
        if name in machine.failed_socks:
            machine.failed_socks.discard(name)
            machine.counters["ops_ignored"] += 1
            return
        raise ev.error("object", f"socket {name} is not open")
    m, n = got
    if m < 0:
        return
    if n:
        machine.mem.charge(m, -n)
        machine.mem.sock[m] -= n
        machine.kmem_total -= n
    machine.mem.nsock[m] -= 1  # mem_cgroup_sk_free(): css_put
    css_put(machine, m)


def op_reclaim(machine: MachineState, ev: TraceEvent) -> None:
    m = _cgroup(machine, ev)
    if m < 0:
        return
    if not machine.kernel.has_memory_reclaim:
        machine.counters["reclaim_unsupported"] += 1
        return
    memory_reclaim(machine, m, pages_of(ev.need_bytes()))


def op_memory(machine: MachineState, ev: TraceEvent) -> None:
    # a trace that knows its machine's RAM overrides the configured size (MachineConfig.mem_bytes)
    nbytes = ev.need_bytes()
    if nbytes < PAGE:
        raise ev.error("bytes", f"memory of {nbytes} bytes: a machine needs at least one page")
    want = nbytes // PAGE
    used = machine.mem_total - nr_free_pages(machine)  # resident, kernel and reserved pages
    if want < used:  # unplugging memory in use: offline_pages() must first free it
        try_to_free_mem_cgroup_pages(machine, ROOT, used - want, full_walk=True)
        used = machine.mem_total - nr_free_pages(machine)
    machine.mem_total = max(want, used)  # what cannot be freed stays online (offline_pages: EBUSY)


def op_swap_on(machine: MachineState, ev: TraceEvent) -> None:
    machine.swap_total = max(pages_of(ev.need_bytes()), machine.swap_used)


def op_swap_off(machine: MachineState, ev: TraceEvent) -> None:
    caller = ROOT if ev.cgroup is None else _cgroup(machine, ev)
    try_to_unuse(machine, max(caller, ROOT))


def op_drop_caches(machine: MachineState, ev: TraceEvent) -> None:
    drop_pagecache(machine)
    if ev.flags & _INODES:
        prune_icache_sb(machine)


def op_sync(machine: MachineState, ev: TraceEvent) -> None:
    ksys_sync(machine)


def _cgroup(machine: MachineState, ev: TraceEvent) -> cython.Py_ssize_t:
    path = ev.need_cgroup()  # canonical already (Machine.apply)
    m = machine.mem.by_path.get(path, -1)
    if m < 0:
        if path in machine.failed_cgroups:
            machine.counters["ops_ignored"] += 1
            return -1
        raise ev.error("cgroup", f"no online cgroup {path}")
    return m


def _task(machine: MachineState, ev: TraceEvent) -> cython.Py_ssize_t:
    name = ev.need_task()
    t = machine.task_by_name.get(name, -1)
    if t < 0:
        raise ev.error("task", f"task {name} was never started or has already exited")
    if not machine.t_alive[t]:
        if machine.t_cg[t] < 0 or t in machine.t_killed:  # failed to start, or OOM-killed
            machine.counters["ops_ignored"] += 1
            return -1
        raise ev.error("task", f"task {name} already exited")
    return t


def _object(machine: MachineState, ev: TraceEvent) -> cython.Py_ssize_t:
    name = ev.need_object()
    o = machine.obj_by_name.get(name, -1)
    if o < 0:
        raise ev.error("object", f"object {name} does not exist")
    return o


def _held_object(machine: MachineState, ev: TraceEvent, t: cython.Py_ssize_t) -> cython.Py_ssize_t:
    """The object a task's unmap/unpin names: by name, or an unlinked one it still maps or pins."""
    name = ev.need_object()
    o = machine.obj_by_name.get(name, -1)
    if o >= 0:
        return o
    for o in [mp[0] for mp in machine.t_maps[t]] + [p[0] for p in machine.t_pins[t]]:
        if machine.o_alive[o] and machine.o_name[o] == name:
            return o
    raise ev.error("object", f"object {name} does not exist")


def _new_object(machine: MachineState, name: str, kind: int, size: int, owner: int) -> int:
    o: cython.Py_ssize_t = machine.free_objs.pop() if machine.free_objs else -1  # (a C index for the stores)
    if o >= 0:
        machine.o_name[o], machine.o_kind[o], machine.o_size[o], machine.o_owner[o] = name, kind, size, owner
        machine.o_alive[o], machine.o_deleted[o], machine.o_maps[o], machine.o_pins[o] = True, False, [], 0
        machine.o_wb[o] = -1
    else:
        o = len(machine.o_name)
        for ints, v in ((machine.o_kind, kind), (machine.o_size, size), (machine.o_owner, owner), (machine.o_pins, 0)):
            ints.append(v)
        machine.o_name.append(name)
        machine.o_alive.append(True)
        machine.o_deleted.append(False)
        machine.o_maps.append([])
        machine.o_wb.append(-1)
    machine.obj_by_name[name] = o
    return o


def _object_end(machine: MachineState, o: int) -> int:
    runs = machine.runs.obj_runs[o] if o < len(machine.runs.obj_runs) else None  # 0 without a run
    return machine.runs.start[runs[-1]] + machine.runs.npages[runs[-1]] if runs else 0
