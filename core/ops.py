"""Operation codes and flag bits of the native trace, as the machine model sees them.

In: nothing. Out: the integer vocabulary shared by ``traces`` (which maps the
trace's strings onto it) and ``core.machine`` (which dispatches on it).

Each op is documented once, here; ``traces.schema`` renders these texts into
``docs/trace-schema.md`` so the documentation cannot drift from the code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Op(enum.IntEnum):
    """One replayable event kind. Values are stable: they are the on-wire codes."""

    MKDIR = 0
    RMDIR = 1
    SET_LIMIT = 2
    TASK_START = 3
    TASK_EXIT = 4
    TASK_MOVE = 5
    ANON_ALLOC = 6
    ANON_FREE = 7
    FILE_CREATE = 8
    FILE_READ = 9
    FILE_WRITE = 10
    FILE_MAP = 11
    FILE_UNMAP = 12
    FILE_DELETE = 13
    PIN = 14
    UNPIN = 15
    KMEM_ALLOC = 16
    KMEM_FREE = 17
    RECLAIM = 18
    SWAP_ON = 19
    SWAP_OFF = 20
    DROP_CACHES = 21
    SYNC = 22
    MEMORY = 23
    SOCK_OPEN = 24
    SOCK_CLOSE = 25


class Flag(enum.IntFlag):
    """Modifiers carried by the trace's ``flags`` column ('|'-separated tokens)."""

    NONE = 0
    SHMEM = 1  #: file_create: a tmpfs/shm object (swap-backed, lives until deleted)
    MLOCK = 2  #: pin/unpin: mlock(2) instead of a FOLL_LONGTERM pin
    MAYFAIL = 4  #: charge may fail instead of OOM-killing (__GFP_RETRY_MAYFAIL / NORETRY)
    SLAB = 8  #: kmem_alloc: slab objects (reparented since v5.9)
    PAGE = 16  #: kmem_alloc: non-slab kmem pages (stacks, page tables; reparented since v5.13)
    MAX = 32  #: set_limit: memory.max
    HIGH = 64  #: set_limit: memory.high
    INODES = 128  #: drop_caches: also evict unused inodes (echo 3 instead of echo 1)


FLAG_TOKENS: dict[str, Flag] = {name.lower(): f for name, f in Flag.__members__.items() if f is not Flag.NONE}


@dataclass(frozen=True)
class OpSpec:
    """Which columns an op uses and what it means.

    ``required``/``optional`` name trace columns beyond ``time_us``, ``machine`` and ``op``.
    """

    op: Op
    required: tuple[str, ...]
    optional: tuple[str, ...]
    flags: tuple[str, ...]
    doc: str


OP_SPECS: dict[Op, OpSpec] = {
    s.op: s
    for s in (
        OpSpec(Op.MKDIR, ("cgroup",), (), (),
               "Create cgroup `cgroup` (path like `/pod/c1`; its parent must exist and be online). "
               "Fails at replay with ENOSPC when the 16-bit memcg ID pool is exhausted "
               "(`mem_cgroup_alloc`, MEM_CGROUP_ID_MAX)."),
        OpSpec(Op.RMDIR, ("cgroup",), (), (),
               "Remove cgroup `cgroup`. EBUSY if it has tasks or online children "
               "(`cgroup_destroy_locked`); otherwise it goes offline and stays dying while "
               "anything charged to it survives."),
        OpSpec(Op.SET_LIMIT, ("cgroup",), ("bytes",), ("max", "high"),
               "Set memory.max (flag `max`) or memory.high (flag `high`) of `cgroup` to `bytes`; "
               "null bytes means `max` (no limit)."),
        OpSpec(Op.TASK_START, ("task", "cgroup"), (), (),
               "Start task `task` (a process) in `cgroup`. Task ids are unique per machine and never reused."),
        OpSpec(Op.TASK_EXIT, ("task",), (), (),
               "Task exits: its anon regions and their swap entries are freed, its mappings, pins "
               "and kmem `page` objects are dropped."),
        OpSpec(Op.TASK_MOVE, ("task", "cgroup"), (), (),
               "Migrate `task` to `cgroup`. Charges already made stay where they are "
               "(cgroup-v2.rst, Memory Ownership)."),
        OpSpec(Op.ANON_ALLOC, ("task", "object", "bytes"), (), ("mayfail",),
               "Fault `bytes` of anonymous memory into region `object` of `task` (created on first use, "
               "grown on later use); charged to the task's current memcg (`do_anonymous_page`)."),
        OpSpec(Op.ANON_FREE, ("task", "object"), ("offset", "bytes"), (),
               "Free the range [offset, offset+bytes) of the task's anon region (whole region if bytes is null)."),
        OpSpec(Op.FILE_CREATE, ("object",), ("bytes",), ("shmem",),
               "Create file `object`: with flag `shmem` a tmpfs/shm object (pages exist only in memory or "
               "swap), otherwise a file on disk of size `bytes` that is not yet cached."),
        OpSpec(Op.FILE_READ, ("task", "object"), ("offset", "bytes"), ("mayfail",),
               "`task` reads [offset, offset+bytes) (whole file if bytes is null). Pages not in the page "
               "cache are inserted and charged to the reader's memcg; cached pages charge nothing "
               "(`__filemap_add_folio`); a refault of an evicted page charges the reader."),
        OpSpec(Op.FILE_WRITE, ("task", "object", "bytes"), ("offset",), ("mayfail",),
               "`task` writes [offset, offset+bytes), extending the file; new pages are charged to the "
               "writer's memcg (`shmem_alloc_and_add_folio` for tmpfs). Disk-file pages become dirty "
               "until written back (after `dirty_expire_us`, or `sync`)."),
        OpSpec(Op.FILE_MAP, ("task", "object"), ("offset", "bytes"), ("mayfail",),
               "`task` mmaps [offset, offset+bytes) and faults it in; only missing pages are charged "
               "(to the task's memcg)."),
        OpSpec(Op.FILE_UNMAP, ("task", "object"), (), (),
               "`task` unmaps its mappings of `object`."),
        OpSpec(Op.FILE_DELETE, ("object",), (), (),
               "Unlink `object`. Its pages (and shmem swap entries) are freed when no mapping remains."),
        OpSpec(Op.PIN, ("task", "object"), ("offset", "bytes"), ("mlock",),
               "`task` pins [offset, offset+bytes) of a file or anon region (FOLL_LONGTERM GUP, or "
               "mlock with flag `mlock`), faulting it in; pinned pages are never reclaimed "
               "(`shrink_folio_list`)."),
        OpSpec(Op.UNPIN, ("task", "object"), ("offset", "bytes"), ("mlock",),
               "Drop a pin taken by `pin` with the same task, object, range and flag."),
        OpSpec(Op.KMEM_ALLOC, ("task", "object", "bytes"), (), ("slab", "page"),
               "Charge `bytes` of kernel memory to the task's memcg as kmem object `object`: `slab` "
               "objects (dentries, inodes) outlive the task; `page` objects (stacks, page tables) "
               "are freed at task exit."),
        OpSpec(Op.KMEM_FREE, ("object",), (), (),
               "Free kmem object `object`, uncharging whichever memcg it is charged to now."),
        OpSpec(Op.RECLAIM, ("cgroup", "bytes"), (), (),
               "Write `bytes` to memory.reclaim of online `cgroup` (v5.19+; `memory_reclaim`)."),
        OpSpec(Op.SOCK_OPEN, ("task", "object"), ("bytes",), (),
               "`task` opens socket `object`. The socket takes a reference on the task's memcg "
               "(`mem_cgroup_sk_alloc()`: `sk->sk_memcg`, none for the root), which keeps that memcg "
               "alive until the socket is freed; its `bytes` of buffers are charged to it (memory.stat "
               "`sock`, `mem_cgroup_charge_skmem()`: refused rather than OOM-killing over a limit)."),
        OpSpec(Op.SOCK_CLOSE, ("object",), (), (),
               "Socket `object` is freed (its last file reference is gone: the opener may have exited "
               "long ago, the fd having been inherited or passed on): buffers uncharged, memcg "
               "reference dropped (`mem_cgroup_sk_free()`)."),
        OpSpec(Op.MEMORY, ("bytes",), (), (),
               "The machine has `bytes` of RAM from now on (importers emit it at the machine's first "
               "event, from the trace's memory capacity; later rows model memory hot(un)plug). "
               "Watermarks follow the new size; nothing is reclaimed until memory is next needed. "
               "Before any `memory` row the machine has the replay's configured size."),
        OpSpec(Op.SWAP_ON, ("bytes",), (), (),
               "Enable (or resize to) a swap device of `bytes`."),
        OpSpec(Op.SWAP_OFF, (), ("cgroup",), (),
               "swapoff run by a task of `cgroup` (null = the root): every swapped page is read back in, "
               "charged to its recorded memcg if online, else to `cgroup` (the swapoff path charges "
               "current), then swap is disabled."),
        OpSpec(Op.DROP_CACHES, (), (), ("inodes",),
               "echo 1 > /proc/sys/vm/drop_caches: drop unmapped, unpinned, clean page cache "
               "(`invalidate_mapping_pages`); with flag `inodes` (echo 3) also evict unused inodes, "
               "which releases a dying memcg's writeback context."),
        OpSpec(Op.SYNC, (), (), (),
               "sync(2): write back all dirty page cache (a dying memcg's writeback context pinned at "
               "rmdir stays pinned)."),
    )
}

OP_BY_NAME: dict[str, Op] = {op.name.lower(): op for op in Op}


def parse_flags(text: str | None) -> Flag:
    """'shmem|mayfail' -> Flag bits. Raises KeyError naming the unknown token."""
    if not text:
        return Flag.NONE
    out = Flag.NONE
    for tok in text.split("|"):
        tok = tok.strip().lower()
        if tok:
            out |= FLAG_TOKENS[tok]
    return out


def format_flags(bits: int) -> str:
    """Flag bits -> canonical '|'-separated tokens ('' for none)."""
    return "|".join(name for name, f in FLAG_TOKENS.items() if bits & f)
