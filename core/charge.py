"""Charging, faulting, freeing and OOM: how pages get on and off a memcg's bill.

In: page-range requests from the op handlers of ``core.machine.Machine``
(this module is a mixin of it). Out: runs made resident, swapped, evicted or
freed, with every counter of ``core.memcg.MemcgTable`` kept exact.

Kernel behaviour modelled (KERNEL-MODEL.md §6):
- first touch owns: a page inserted into the page cache or shmem, or an anon
  fault, is charged to the faulting task's memcg (``__filemap_add_folio``,
  ``shmem_alloc_and_add_folio``, ``do_anonymous_page``); finding a page already
  resident charges nothing.
- a refault after eviction charges the refaulting task (mm/workingset.c).
- swap-in (``mem_cgroup_swapin_charge_folio``): charge the memcg recorded in the
  swap entry if it is online, else the faulting task's memcg; the slot is freed
  on swap-in (as when the swap cache folio is exclusive; the swap charge goes with it).
- swap-out records the nearest *online* ancestor (``mem_cgroup_id_get_online``),
  which keeps that memcg's ID and its swap charge until the slot is freed.
- ``try_charge_memcg``: on a memory.max breach reclaim in ``mem_over_limit``'s
  subtree and retry (MAX_RECLAIM_RETRIES = 16); then, unless the charge may
  fail, OOM-kill inside that subtree and retry; no victim -> ENOMEM. A model
  shortcut: a reclaim pass that frees nothing is not repeated 16 times (nothing
  in the model could change between the retries), it goes straight to the OOM step.
- memory.high: after the charge, reclaim the excess of every ancestor over its
  high (``mem_cgroup_handle_over_high``); never OOM.
- global memory: kswapd wakes below the low watermark and reclaims to the high
  one; an allocation that still does not fit OOM-kills machine-wide.

OOM victim (``oom_badness``): the task with the largest resident anon + swapped
anon + kmem pages (page tables, stacks) among the tasks of the OOM domain; ties
go to the task that started first. memory.oom.group is not modelled.
"""

from __future__ import annotations

from bisect import bisect_right  # plain names: no module attribute lookup per call
from typing import TYPE_CHECKING, NamedTuple

from core import reclaim
from core.memcg import ROOT, State
from core.pages import Kind, St

if TYPE_CHECKING:
    from core.machine import Machine

MAX_RECLAIM_RETRIES = 16
MEMCG_CHARGE_BATCH = 64  # pages a charge reserves at once (mm/memcontrol.c)
OOM_REAPER_DELAY_US = 2_000_000  # mm/oom_kill.c OOM_REAPER_DELAY = 2*HZ (v5.18+)

# plain ints for the per-event paths: an IntEnum member lookup (``St.RESIDENT``) costs about
# 160 ns in Python 3.11, four times the comparison it feeds
_RESIDENT, _SWAPPED, _EVICTED = int(St.RESIDENT), int(St.SWAPPED), int(St.EVICTED)
_ANON, _FILE = int(Kind.ANON), int(Kind.FILE)
_ONLINE, _DYING = int(State.ONLINE), int(State.DYING)


class _Pieces(NamedTuple):
    """``_charge_range``'s answer for an access that reclaim must make room for with its own
    pages (nothing reserved): the first piece's length and the ``_needs`` it computed."""

    step: int  #: pages of the first piece (``_piece_pages``)
    need: dict[int, int]  #: pages to pay per memcg for the whole range
    segs: list[tuple[int, int, int, int]]  #: the range's segments, as ``_needs`` gives them


class ChargeMixin:
    """Charge paths of ``Machine``; see the module docstring for the rules."""

    # ------------------------------------------------------------------ accounting
    def _acct(self: "Machine", r: int, sign: int, reserved: bool = False, hier: bool = True) -> None:
        """Add (+1) or remove (-1) run ``r``'s pages on the counters of the memcg it names.

        ``reserved``: the hierarchical usage was already raised by ``try_charge``.
        ``hier=False``: own counters only (a move to an ancestor leaves the hierarchy as it is).
        """
        R, mem = self.runs, self.mem
        st, m = R.state[r], R.memcg[r]
        n = R.npages[r] * sign
        if st == _RESIDENT:
            k = R.kind[r]
            if k == _ANON:
                mem.anon[m] += n
                self.t_anon[self.o_owner[R.obj[r]]] += n
            elif k == _FILE:
                mem.file[m] += n
            else:
                mem.shmem[m] += n
            if R.mapc[r] and k != _ANON:
                mem.mapped[m] += n
            if R.pinc[r]:
                mem.pinned[m] += n
            if not hier:
                pass
            elif reserved:
                self.reserved -= n
                self.resident += n
            else:
                mem.charge(m, n)
                self.resident += n
        elif st == _SWAPPED:
            if R.kind[r] == _ANON:
                self.t_swap[self.o_owner[R.obj[r]]] += n
            if sign < 0 and hier:
                self.free_swap_slots(m, -n)  # may stay parked in a CPU's slot cache for a while
                return
            mem.swap[m] += n
            if hier:
                mem.charge_swap(m, n)
                self.swap_used += n
            if sign < 0 and mem.swap[m] == 0 and mem.state[m] != _ONLINE:
                mem.put_id(m)  # the last swap entry drops the ID (mem_cgroup_id_put_many)
        else:
            return
        if sign < 0 and mem.state[m] == _DYING:
            self._release_q.append(m)

    def reap(self: "Machine") -> None:
        """Free every dying memcg whose last reference went away (css_release / css_free)."""
        q = self._release_q
        while q:
            m = q.pop()
            if self.mem.state[m] == _DYING:
                self.counters["memcgs_freed"] += self.mem.try_release(m, self.now_us)

    # ------------------------------------------------------------------ charging
    def try_charge(self: "Machine", m: int, n: int, mayfail: bool, t: int) -> bool:
        """Reserve ``n`` pages on ``m``'s hierarchy (try_charge_memcg); False if refused or ``t`` died."""
        if n <= 0:
            return True
        free = self.mem_total - self.resident - self.kmem_total - self.reserved  # _free_pages()
        # _global_room only when it has work: a call per charge costs more than this test
        if free - n < int(self.mem_total * self.cfg.watermark_low) or free < n:
            if not self._global_room(n, t, mayfail):
                return False
        mem = self.mem
        usage, mx, parent = mem.usage, mem.max, mem.parent
        x = m  # mem.over_limit(m, n) inlined: the usual charge fits every ancestor's max
        while x >= 0 and usage[x] + n <= mx[x]:
            x = parent[x]
        if x < 0:
            mem.charge(m, n)
            self.reserved += n
            return True
        retries = MAX_RECLAIM_RETRIES
        while True:
            over = mem.over_limit(m, n)
            if over < 0:
                break
            self.counters["max_events"] += 1
            want = max(mem.usage[over] + n - mem.max[over], reclaim.SWAP_CLUSTER_MAX)
            got = reclaim.shrink(self, over, want, full_walk=not self.kernel.at_least(6, 12),
                                 batch=reclaim.SWAP_CLUSTER_MAX)  # per faulting page: 32 a call
            retries = retries - 1 if got else 0
            if retries > 0 or mem.over_limit(m, n) < 0:
                continue
            if mayfail or not self._oom(over, t):
                self.counters["charge_failed"] += 1
                return False
            if t >= 0 and not self.t_alive[t]:
                return False
            retries = MAX_RECLAIM_RETRIES
        mem.charge(m, n)
        self.reserved += n
        return True

    def handle_over_high(self: "Machine", m: int) -> None:
        """mem_cgroup_handle_over_high (on return to user space, after the fault completed):
        reclaim each ancestor's excess over memory.high; never OOM."""
        for h in self.mem.over_high(m):
            excess = self.mem.usage[h] - self.mem.high[h]
            if excess > 0:
                self.counters["high_events"] += 1
                reclaim.shrink(self, h, excess, full_walk=not self.kernel.at_least(6, 12),
                               batch=MEMCG_CHARGE_BATCH)  # reclaim_high: per charge batch over high

    def _free_pages(self: "Machine") -> int:
        return self.mem_total - self.resident - self.kmem_total - self.reserved

    def _global_room(self: "Machine", n: int, t: int, mayfail: bool) -> bool:
        """Make room for ``n`` pages machine-wide: kswapd to the high watermark, then global OOM."""
        low = int(self.mem_total * self.cfg.watermark_low)
        if self.mem_total - self.resident - self.kmem_total - self.reserved - n < low:  # _free_pages()
            high = int(self.mem_total * self.cfg.watermark_high)
            self.counters["kswapd_wakeups"] += 1
            reclaim.shrink(self, ROOT, high - (self._free_pages() - n), full_walk=True)
        while self._free_pages() < n:
            if mayfail or not self._oom(ROOT, t):
                self.counters["charge_failed"] += 1
                return False
            if t >= 0 and not self.t_alive[t]:
                return False
        return True

    # ------------------------------------------------------------------ OOM
    def _oom(self: "Machine", domain: int, t: int) -> bool:
        """Kill the worst task inside ``domain``'s subtree; False when there is none."""
        mem = self.mem
        best, key = -1, (0, 0)
        seq = self.t_seq
        for v in self._live_tasks():
            if domain != ROOT and not mem.is_ancestor(domain, self.t_cg[v]):
                continue
            # the largest wins; among equals the task started first (slots are reused, so not by slot)
            k = (-(self.t_anon[v] + self.t_swap[v] + self.t_kpages[v]), seq[v])
            if best < 0 or k < key:
                best, key = v, k
        if best < 0:
            return False
        self.counters["global_oom_kills" if domain == ROOT else "oom_kills"] += 1
        victim = self.t_cg[best]
        mem.oom_kill[victim] += 1
        self.t_killed.add(best)
        self.task_exit(best)
        if self.kernel.at_least(5, 18):
            # queue_oom_reaper: get_task_struct on the victim, put OOM_REAPER_DELAY (2 s) later; the
            # task's css_set, and so its memcg, lives that long (a memcg removed meanwhile stays dying)
            mem.noom[victim] += 1
            self.schedule(self.now_us + OOM_REAPER_DELAY_US, "machine", "oom_reaped", victim)
        return True

    def oom_reaped(self: "Machine", m: int) -> None:
        """The OOM reaper drops its hold on a victim of memcg ``m`` (queued by ``_oom``)."""
        self.mem.noom[m] -= 1
        self.counters["memcgs_freed"] += self.mem.try_release(m, self.now_us)

    def _live_tasks(self: "Machine") -> list[int]:
        return [v for v, alive in enumerate(self.t_alive) if alive]

    def _enforce_max(self: "Machine", m: int, t: int = -1, charging: bool = False) -> None:
        """Reclaim ``m`` down to its memory.max, OOM-killing inside it while reclaim cannot.

        memory_max_write (the default): one reclaim call for the whole excess, with a full
        walk. ``charging``: a charge by task ``t`` that went past the limit
        (``_fault_streaming``): try_charge_memcg's calls of SWAP_CLUSTER_MAX pages, walking
        partially from v6.12, each round a memory.max event.
        """
        mem = self.mem
        full_walk = not charging or not self.kernel.at_least(6, 12)
        batch = reclaim.SWAP_CLUSTER_MAX if charging else 0
        while mem.usage[m] > mem.max[m]:
            if charging:
                self.counters["max_events"] += 1
            got = reclaim.shrink(self, m, mem.usage[m] - mem.max[m], full_walk=full_walk, batch=batch)
            if got == 0 and not self._oom(m, t):
                break

    def _reclaim_high(self: "Machine", m: int) -> None:
        """memory_high_write: one reclaim of the excess over the new high."""
        excess = self.mem.usage[m] - self.mem.high[m]
        if excess > 0:
            reclaim.shrink(self, m, excess, full_walk=True)

    # ------------------------------------------------------------------ faulting
    def _seg_target(self: "Machine", o: int, r: int, accessor: int) -> int:
        """Which memcg pays for making this segment resident (-1: nothing to pay)."""
        R = self.runs
        if r >= 0:
            st = R.state[r]
            if st == _RESIDENT:
                return -1
            if st == _SWAPPED:
                rec = R.memcg[r]
                return self.policy.swapin_target(self, r, rec, accessor)
        return self.policy.charge_target(self, o, accessor)

    def _needs(self: "Machine", o: int, lo: int, hi: int, accessor: int,
               fill_holes: bool) -> tuple[dict[int, int], list[tuple[int, int, int, int]]]:
        """Pages of [lo, hi) that must be charged, per paying memcg, and the segments they came from.

        Segments are (run or -1, seg_lo, seg_hi, payer): ``_materialize`` reuses the payer
        (``_seg_target``; -1 for a resident run or a hole left alone) instead of asking the
        policy again. It stays true because ``fault_range`` recomputes the segments whenever
        anything moved while charging (``mutations``).
        """
        need: dict[int, int] = {}
        segs: list[tuple[int, int, int, int]] = []
        state, policy = self.runs.state, self.policy
        for r, s, e in self.runs.pieces(o, lo, hi):  # unsplit: _materialize isolates what it changes
            if r < 0:
                # _seg_target of a hole, inlined
                tgt = policy.charge_target(self, o, accessor) if fill_holes else -1
            elif state[r] == _RESIDENT:
                tgt = -1
            else:
                tgt = self._seg_target(o, r, accessor)
            segs.append((r, s, e, tgt))
            if tgt >= 0:
                need[tgt] = need.get(tgt, 0) + e - s
        return need, segs

    def fault_range(self: "Machine", t: int, o: int, lo: int, hi: int, mayfail: bool,
                    fill_holes: bool = True, dirty: int = 0) -> bool:
        """Make pages [lo, hi) of ``o`` resident for task ``t`` and mark them accessed.

        Charges follow the module's rules; returns False when the charge was refused
        or the task (or the object) died on the way, leaving the range untouched.
        ``dirty`` > 0 (a write to a disk file: its stamp) also stamps the range, as
        ``_stamp_dirty`` right after the fault would. When nothing can look at the runs
        in between (no memory.high reclaim due) the stamp goes on in the same pass, so
        an append grows the last run instead of adding a clean run that the stamp then
        merges back; both end in the same runs (one ``coalesce`` window covers them).
        """
        R = self.runs
        runs = R.obj_runs.get(o)
        if runs and lo < hi:
            # the usual access: one resident run covers the range (``_touch_if_resident``
            # without its loop): nothing to charge, age it (and stamp it) in place
            starts = R.obj_starts[o]
            i = bisect_right(starts, lo) - 1
            if i >= 0:
                r = runs[i]
                if hi <= starts[i] + R.npages[r] and R.state[r] == _RESIDENT:
                    age = self.now_us // self.cfg.age_quantum_us  # lru_age(), inlined
                    if R.age[r] != age or dirty and R.dirty[r] != dirty:
                        x = R.isolate(r, lo, hi)
                        R.age[x] = age
                        if dirty:
                            R.dirty[x] = dirty
                    elif not dirty:
                        return True
                    R.coalesce(o, lo, hi)  # (a write's stamp coalesces even when it changed nothing)
                    return True
            # a range starting before the first run or running past the last one has a hole
            # to fill (an append): the touch-only path cannot take it
            hole = fill_holes and (i < 0 or i == len(runs) - 1 and starts[i] + R.npages[runs[i]] < hi)
        else:
            hole = fill_holes and not runs
        if not hole and self._touch_if_resident(o, lo, hi, fill_holes, dirty):
            return True
        charged = self._charge_range(t, o, lo, hi, mayfail, fill_holes)
        if charged is None:
            return False
        if isinstance(charged, _Pieces):
            return self._fault_chunks(t, o, lo, hi, mayfail, fill_holes, dirty, charged)
        have, segs, settled = charged
        # a settled fault only gives back reservations, so no memcg over its high now means
        # no handle_over_high reclaim after it: nothing can see the runs before the stamp
        fused = dirty and settled and not self._over_high_any(have)
        self._materialize(o, segs, fill_holes, have, dirty if fused else 0)
        R.coalesce(o, lo, hi)
        if not fused:
            self._reclaim_over_high(have)
            if dirty:
                self._stamp_dirty(o, lo, hi, dirty)
        return True

    def _piece_pages(self: "Machine", o: int, need: dict[int, int]) -> int:
        """0 when ``need`` (pages per paying memcg) of object ``o`` can be charged at once; else
        how many pages of the access to charge at a time.

        The kernel charges an access folio by folio (filemap_add_folio, do_anonymous_page,
        each calling mem_cgroup_charge), so the pages it has brought in are on the LRU, and
        reclaimable, while its later pages are charged: a read bigger than the room under
        memory.max evicts its own first pages (kernel check ``limit_reclaim_anon_vs_file``).
        Reclaim takes older pages first: while the room under each limit (memory.max; from
        v5.18 memory.high too, which try_charge_memcg reclaims synchronously) and under the
        low watermark, plus the older pages that reclaim there takes first
        (``reclaim.first_pass_pages``), cover the access, one charge with one reclaim ends as
        the page-by-page charges would. Otherwise the access goes in pieces of that cover
        (at least MEMCG_CHARGE_BATCH pages), each charged once its predecessors are resident
        (``_fault_chunks``). An access whose own pages reclaim could not take (anon or shmem
        without swap, or an object with mappings while ``mapped_hot``) is one charge:
        pieces would end the same way.
        """
        mem = self.mem
        usage, mx, parent = mem.usage, mem.max, mem.parent
        high = mem.high if self.kernel.at_least(5, 18) else mx
        total = sum(need.values())
        free_room = self._free_pages() - int(self.mem_total * self.cfg.watermark_low)
        tight: list[tuple[int, int]] = []  # (memcg, room under its limits) where the charge does not fit
        for m, n in need.items():
            while m >= 0:
                room = (mx[m] if mx[m] < high[m] else high[m]) - usage[m]
                if n > room:
                    tight.append((m, room))
                m = parent[m]
        if total <= free_room and not tight:
            return 0  # the usual case: it fits, no reclaim
        kind = self.o_kind[o]
        if kind != _FILE and self.swap_total <= self.swap_used:
            return 0
        if kind != _ANON and self.o_maps[o] and self.cfg.mapped_hot:
            return 0  # its pages may be mapped, so referenced: reclaim keeps them
        cap = -1  # -1: nothing in the way
        if total > free_room:  # kswapd wakes and reclaims to the high watermark
            gap = int(self.mem_total * (self.cfg.watermark_high - self.cfg.watermark_low))
            cap = free_room + reclaim.first_pass_pages(self, ROOT) - gap
        for m, room in tight:
            c = room + reclaim.first_pass_pages(self, m)
            cap = c if cap < 0 else min(cap, c)
        if cap < 0 or total <= cap:
            return 0
        return max(MEMCG_CHARGE_BATCH, cap)

    def _fault_chunks(self: "Machine", t: int, o: int, lo: int, hi: int, mayfail: bool,
                      fill_holes: bool, dirty: int, pieces: _Pieces) -> bool:
        """``fault_range`` of an access that reclaim must make room for with its own pages.

        Under memcg limits alone (free memory stays above the low watermark) and for a
        charge that may not fail: ``_fault_streaming``, one reclaim per limit. Otherwise in
        consecutive pieces, the first ``pieces.step`` pages long (see ``_piece_pages``; each
        later piece sizes itself the same way); False as soon as a piece is refused, and the
        pieces before it stay resident, as after a short read in the kernel.
        """
        if not mayfail and self._free_pages() - (hi - lo) >= int(self.mem_total * self.cfg.watermark_low):
            return self._fault_streaming(t, o, lo, hi, fill_holes, dirty, pieces.need, pieces.segs)
        step, a = pieces.step, lo
        while a < hi:
            b = min(a + step, hi)
            if not self.fault_range(t, o, a, b, mayfail, fill_holes, dirty):
                return False
            a = b
            if a < hi:  # size the next piece as the first was (t is alive: the piece succeeded)
                need, _ = self._needs(o, a, hi, self.t_cg[t], fill_holes)
                step = (self._piece_pages(o, need) if need else 0) or hi - a
        return True

    def _fault_streaming(self: "Machine", t: int, o: int, lo: int, hi: int, fill_holes: bool, dirty: int,
                         need: dict[int, int], segs: list[tuple[int, int, int, int]]) -> bool:
        """Make [lo, hi) of ``o`` resident past its memcgs' limits, then reclaim each limit's
        excess with the access's own pages among the candidates; False if ``t`` or ``o`` died.
        ``need`` and ``segs``: ``_needs`` of the range, as ``_charge_range`` computed them.

        What the kernel's page-by-page charges of an access bigger than the room under
        memory.max end with (``_piece_pages``), in one reclaim instead of one per piece:
        reclaim takes the oldest pages first, so older page cache goes, then the access's
        own first pages (the youngest candidates, in page order), in the 32-page calls of
        limit reclaim across the memcgs of the over-limit subtree. Only when free memory
        stays above the low watermark (no machine-wide overcommit) and the charge may not
        fail. An excess that reclaim cannot take OOM-kills inside the subtree, as the charge
        would have. memory.peak of the memcgs on the way is held to what the page-by-page
        charges could reach: the old peak, or the usage before plus the tightest room above.
        """
        mem, R = self.mem, self.runs
        chain: dict[int, int] = {}  # every memcg whose usage the charge raises -> its peak bound
        for m in need:
            path, x = [], m
            while x >= 0:
                path.append(x)
                x = mem.parent[x]
            room = min(max(mem.max[x] - mem.usage[x], 0) for x in path)
            for x in path:
                bound = max(mem.peak[x], min(mem.usage[x] + room, mem.max[x]))
                chain[x] = max(chain.get(x, 0), bound)
        for m, n in need.items():
            mem.charge(m, n)
            self.reserved += n
        self._materialize(o, segs, fill_holes, dict(need), dirty)
        R.coalesce(o, lo, hi)
        for x in chain:
            if mem.peak[x] > chain[x]:
                mem.peak[x] = chain[x]
        for m in sorted(need):
            x = m
            while x >= 0:
                self._enforce_max(x, t, charging=True)
                x = mem.parent[x]
        alive = bool(self.t_alive[t]) and bool(self.o_alive[o])
        if alive:
            self._reclaim_over_high(need)
        return alive

    def _charge_range(self: "Machine", t: int, o: int, lo: int, hi: int, mayfail: bool,
                      fill_holes: bool) -> tuple[dict[int, int], list[tuple[int, int, int, int]], bool] | _Pieces | None:
        """Reserve what making [lo, hi) of ``o`` resident costs, per paying memcg.

        Returns (pages reserved per memcg, the segments from ``_needs``, settled: the last
        charge round moved nothing), or None when a charge was refused or the task or the
        object died on the way (then nothing stays reserved), or ``_Pieces`` with nothing
        reserved when a range longer than a charge batch needs reclaim that would take its
        own pages: the caller then faults it in pieces (``_fault_chunks``).
        """
        R = self.runs
        have: dict[int, int] = {}
        accessor = self.t_cg[t]
        need, segs = self._needs(o, lo, hi, accessor, fill_holes)
        if hi - lo > MEMCG_CHARGE_BATCH and need:
            step = self._piece_pages(o, need)
            if step and step < hi - lo:
                return _Pieces(step, need, segs)
        for _ in range(4):  # reclaim inside a charge may evict pages of this very range
            mark = R.mutations
            # sorted() only when there is an order to fix: most faults pay one memcg
            for m, n in (sorted(need.items()) if len(need) > 1 else need.items()):
                h = have.get(m, 0)
                n -= h
                if n <= 0:
                    continue
                if not self.try_charge(m, n, mayfail, t) or not self.t_alive[t] or not self.o_alive[o]:
                    self._unreserve(have)
                    R.split_ends(o, lo, hi)  # the splits the eager segments() made before charging
                    return None
                have[m] = h + n
            if R.mutations == mark:
                return have, segs, True  # nothing moved while charging: the segments are still true
            need, segs = self._needs(o, lo, hi, accessor, fill_holes)
        return have, segs, False  # _materialize may pay more: usage may still rise

    def _reclaim_over_high(self: "Machine", paid: dict[int, int]) -> None:
        """After a fault that charged ``paid`` (pages per memcg): memory.high reclaim for each
        of them whose hierarchy is over its high (``handle_over_high``), in memcg order."""
        if self._over_high_any(paid):
            for m in (sorted(paid) if len(paid) > 1 else paid):
                self.handle_over_high(m)

    def _over_high_any(self: "Machine", have: dict[int, int]) -> bool:
        """Is some ancestor (or self) of a memcg in ``have`` over its memory.high?"""
        mem = self.mem
        usage, high, parent = mem.usage, mem.high, mem.parent
        for x in have:
            while x >= 0:
                if usage[x] > high[x]:
                    return True
                x = parent[x]
        return False

    def _touch_if_resident(self: "Machine", o: int, lo: int, hi: int, fill_holes: bool, dirty: int = 0) -> bool:
        """Fast path of ``fault_range``: when nothing in [lo, hi) needs a charge, just age it (and stamp ``dirty``)."""
        R = self.runs
        runs = R.obj_runs.get(o)
        if not runs:
            return not fill_holes
        state, start, npages, ages, dirt = R.state, R.start, R.npages, R.age, R.dirty
        age = self.now_us // self.cfg.age_quantum_us  # lru_age(), inlined: once per event
        i = bisect_right(R.obj_starts[o], lo) - 1
        if i < 0:
            i = 0
        pos, n = lo, len(runs)
        stale: list[tuple[int, int, int]] = []  # (run, seg_lo, seg_hi) whose age changes
        while i < n and pos < hi:
            r = runs[i]
            s = start[r]
            e = s + npages[r]
            if e <= pos:
                i += 1
                continue
            if s > pos and fill_holes or s >= hi:
                break
            if state[r] != _RESIDENT:
                return False
            if ages[r] != age or dirty and dirt[r] != dirty:
                stale.append((r, s if s > lo else lo, e if e < hi else hi))
            pos = e
            i += 1
        if pos < hi and fill_holes:
            return False
        if not stale and not dirty:
            return True  # (a write's stamp coalesces even when it changed nothing)
        for r, s, e in stale:  # split only the runs that change, and only [lo, hi) of them
            x = R.isolate(r, s, e)
            ages[x] = age
            if dirty:
                dirt[x] = dirty
        R.coalesce(o, lo, hi)
        return True

    def _unreserve(self: "Machine", have: dict[int, int]) -> None:
        for m, n in have.items():
            self.mem.charge(m, -n)
            self.reserved -= n

    def _materialize(self: "Machine", o: int, segs: list[tuple[int, int, int, int]],
                     fill_holes: bool, have: dict[int, int], dirty: int) -> None:
        """Turn the holes and non-resident runs of ``segs`` (from ``_needs``) resident, paid from ``have``.

        ``dirty`` > 0: stamp every page of ``segs`` dirty on the way (see ``fault_range``).
        """
        R, now = self.runs, self.now_us // self.cfg.age_quantum_us  # lru_age(), inlined
        state, ages, dirt = R.state, R.age, R.dirty
        for r, s, e, tgt in segs:
            if r >= 0 and state[r] == _RESIDENT:
                if ages[r] != now or dirty and dirt[r] != dirty:  # segs are unsplit: split only what changes
                    x = R.isolate(r, s, e)
                    ages[x] = now
                    if dirty:
                        dirt[x] = dirty
                continue
            if r < 0 and not fill_holes:
                continue
            n = e - s
            h = have.get(tgt, 0)
            if h < n:  # reclaim moved pages after the last charge: pay now
                self.mem.charge(tgt, n)
                self.reserved += n
                h += n
            have[tgt] = h - n
            if r < 0:
                if self.o_maps[o]:
                    self._new_resident(o, s, e, tgt, dirty)
                else:  # no mappings: one unmapped piece (_new_resident without its piece walk)
                    k = self.o_kind[o]
                    R.add_resident(o, s, n, tgt, 0, now, k, dirty)
                    self._acct_new_resident(o, tgt, k, 0, n)
            else:
                x = R.isolate(r, s, e)
                self._make_resident(x, tgt)
                if dirty:
                    dirt[x] = dirty
        for m, n in have.items():  # _unreserve of what is left over
            if n:
                self.mem.charge(m, -n)
                self.reserved -= n

    def _new_resident(self: "Machine", o: int, s: int, e: int, memcg: int, dirty: int = 0) -> None:
        """Instantiate pages [s, e) of ``o`` charged to ``memcg``, split where mappings differ."""
        R, age, kind = self.runs, self.now_us // self.cfg.age_quantum_us, self.o_kind[o]  # lru_age() inlined
        for a, b, mapc in (self._map_pieces(o, s, e) if self.o_maps[o] else ((s, e, 0),)):
            R.add_resident(o, a, b - a, memcg, mapc, age, kind, dirty)  # may grow the run before the hole
            self._acct_new_resident(o, memcg, kind, mapc, b - a)

    def _acct_new_resident(self: "Machine", o: int, m: int, k: int, mapc: int, n: int) -> None:
        """``_acct(r, +1, reserved=True)`` for ``n`` new unpinned resident pages of ``o`` charged to ``m``.

        By pages rather than by run: the pages may have grown an existing run.
        """
        mem = self.mem
        if k == _ANON:
            mem.anon[m] += n
            self.t_anon[self.o_owner[o]] += n
        elif k == _FILE:
            mem.file[m] += n
        else:
            mem.shmem[m] += n
        if mapc and k != _ANON:
            mem.mapped[m] += n
        self.reserved -= n
        self.resident += n

    def _make_resident(self: "Machine", r: int, memcg: int) -> None:
        """Refault an evicted run or swap in a swapped one, charged to ``memcg``."""
        R = self.runs
        n = R.npages[r]
        if R.state[r] == _EVICTED:
            self.mem.count_refault(memcg, n)
            self.counters["refaults"] += n
            R.origin[r] = memcg
        else:
            self._acct(r, -1)  # frees the swap slot and its charge
            self.counters["swapins"] += n
        R.set_owner(r, _RESIDENT, memcg)
        R.age[r] = self.lru_age()
        self._acct(r, +1, reserved=True)

    def _map_pieces(self: "Machine", o: int, s: int, e: int) -> list[tuple[int, int, int]]:
        """[s, e) cut where the set of mappings of ``o`` changes: (lo, hi, map count)."""
        maps = self.o_maps[o]
        if not maps:
            return [(s, e, 0)]
        cuts = sorted({s, e, *(x for _, a, b in maps for x in (a, b) if s < x < e)})
        return [(a, b, sum(1 for _, lo, hi in maps if lo <= a and b <= hi)) for a, b in zip(cuts, cuts[1:])]

    def _add_count(self: "Machine", o: int, lo: int, hi: int, field: str, delta: int) -> None:
        """Add ``delta`` to the map or pin count of every run in [lo, hi) of ``o``."""
        R, mem = self.runs, self.mem
        col = getattr(R, field)
        counter = mem.mapped if field == "mapc" else mem.pinned
        for r, _, _ in R.segments(o, lo, hi):
            if r < 0:
                continue
            old = col[r]
            new = old + delta
            col[r] = new
            if R.state[r] == _RESIDENT and (old > 0) != (new > 0):
                if field == "pinc" or R.kind[r] != _ANON:
                    counter[R.memcg[r]] += R.npages[r] if new > 0 else -R.npages[r]
        R.coalesce(o, lo, hi)

    # ------------------------------------------------------------------ freeing and state changes
    def free_range(self: "Machine", o: int, lo: int, hi: int) -> None:
        """Free pages [lo, hi) of ``o``: uncharge resident pages, free swap slots, drop shadows."""
        R = self.runs
        for r, _, _ in R.segments(o, lo, hi):
            if r >= 0:
                self._acct(r, -1)
                R.drop(r)

    def free_object(self: "Machine", o: int) -> None:
        """Free every page of ``o`` and the object itself (unlink + last close, or region unmap)."""
        R = self.runs
        # uncharge in page order first (nothing in _acct looks at runs), then drop them at once
        for r in R.obj_runs.get(o, ()):
            self._acct(r, -1)
        R.drop_object(o)
        self.inode_released(o)
        self.o_alive[o] = False
        name = self.o_name[o]
        if self.obj_by_name.get(name) == o:
            del self.obj_by_name[name]
        owner = self.o_owner[o]
        if owner >= 0:
            self.t_regions[owner].discard(o)
            self.t_pins[owner] = [p for p in self.t_pins[owner] if p[0] != o]
        self.policy.object_freed(self, o)
        self._free_objs.append(o)

    def evict_run(self: "Machine", r: int) -> None:
        """Reclaim a page-cache run: uncharge it and leave a shadow (EVICTED)."""
        self._acct(r, -1)
        self.runs.set_owner(r, _EVICTED, -1)
        self.counters["evictions"] += self.runs.npages[r]

    def swap_out_run(self: "Machine", r: int) -> None:
        """Reclaim a swap-backed run: the record names the nearest online ancestor."""
        R = self.runs
        rec = self.mem.nearest_online(R.memcg[r])
        self._acct(r, -1)
        R.set_owner(r, _SWAPPED, rec)
        self._acct(r, +1)
        self.counters["swapouts"] += R.npages[r]

    def swapoff(self: "Machine", caller: int = ROOT) -> None:
        """swapoff(2): drain the slot caches, read every swapped run back in, disable swap.

        A record whose memcg is online is charged back to it; otherwise the page is
        charged to ``caller``, the memcg of the task running swapoff: the swapoff
        path swaps in with no mm, so mem_cgroup_swapin_charge_folio charges
        current (found by the real-kernel check, docs/kernel-validation.md D1).
        Charges are forced (the model does not fail swapoff with ENOMEM).
        """
        R, mem = self.runs, self.mem
        self.drain_slot_caches()
        self.swap_total = 0  # no new slots, and freed ones are released at once
        for r in R.page_order(R.swapped_ids().tolist()):
            rec = R.memcg[r]
            tgt = rec if mem.state[rec] == _ONLINE else caller
            self._acct(r, -1)
            R.set_owner(r, _RESIDENT, tgt)
            self._acct(r, +1)
        self._global_room(0, -1, False)

    def drop_caches(self: "Machine") -> None:
        """drop_caches=1: unmapped, unpinned, clean page cache is removed without shadows."""
        R = self.runs
        if len(R) == 0:
            return
        state, kind, mapc, pinc = R.view("state"), R.view("kind"), R.view("mapc"), R.view("pinc")
        ids = ((state == _RESIDENT) & (kind == _FILE) & (mapc == 0) & (pinc == 0)).nonzero()[0].tolist()
        del state, kind, mapc, pinc
        ids = R.page_order(ids)  # uncharge order decides the release order of zombies: not by run id
        ids = [r for r in ids if not self.dirty_now(r)]  # invalidate_mapping_pages skips dirty folios
        for r in ids:
            self.counters["dropped_pages"] += R.npages[r]
            self._acct(r, -1)
            R.drop(r)
