# Static layout of core.state.MachineState for the compiled build (Cython reads it beside state.py).
# Every field is a slot of the C struct, so a compiled module that knows a function argument is a
# MachineState (its own .pxd cimports it) reads a field at a fixed offset instead of a dict lookup.
# Scalars keep Python object type (ints stay arbitrary-precision, exactly as in the pure model), except
# the clock and the page totals (int64, overflow-checked; a clock past int64 is refused in both builds)
# and the config, kernel and policy facts the per-event paths read (copied at construction);
# containers are typed list/dict/set, so compiled code indexes and looks them up without a method call.
# ``__dict__`` keeps room for attributes set from outside (tests, policies).

from cpython.array cimport array
from core.memcg cimport MemcgTable
from core.pages cimport RunTable


cdef class MachineState:
    cdef dict __dict__
    cdef public MemcgTable mem
    cdef public RunTable runs
    cdef public object _rng
    cdef public object _rng_seed
    cdef public object cfg
    cdef public object changes
    cdef public dict counters
    cdef public long long pending_events
    cdef public set dropped_pins
    cdef public set failed_cgroups
    cdef public set failed_kmem
    cdef public set failed_socks
    cdef public list free_kmem
    cdef public list free_objs
    cdef public list free_tasks
    cdef public dict i_dirty
    cdef public array i_atime  # per object slot: a disk file's atime in µs, -1 without one
    cdef public array i_mtime  # per object slot: its mtime
    cdef public list k_memcg
    cdef public list k_name
    cdef public list k_pages
    cdef public list k_slab
    cdef public list k_task
    cdef public object kernel
    cdef public dict kmem_by_name
    cdef public dict kmem_of
    cdef public long long kmem_total  # pages (overflowcheck: never wraps)
    cdef public object machine_id
    cdef public long long mem_total  # pages (overflowcheck: never wraps)
    cdef public object memcg_cost
    cdef public long long now_us  # µs; trace times are int64: a later time is an OverflowError
    cdef public long long age_quantum_us  # cfg.age_quantum_us, read per fault: a C field
    cdef public long long dirty_expire_us  # cfg.dirty_expire_us
    cdef public int atime_mode  # cfg.atime's index in ATIME_MODES, read per read of a disk file
    cdef public bint slab_reparented  # kernel.slab_reparented, read per kmem charge
    cdef public bint kmem_reparented  # kernel.kmem_reparented
    cdef public bint kernel_targets  # policy.kernel_targets: the fault path applies the kernel's payers itself
    cdef public bint wants_access  # policy.wants_access: reads, writes and maps call its on_access hook
    cdef public bint charge_reclaims_high  # v5.18+: a charge over memory.high reclaims at once
    cdef public double watermark_low  # cfg.watermark_low, read per charge
    cdef public double watermark_high  # cfg.watermark_high
    cdef public list o_alive
    cdef public list o_deleted
    cdef public list o_kind
    cdef public list o_maps
    cdef public list o_name
    cdef public list o_owner
    cdef public list o_pins
    cdef public list o_size
    cdef public list o_wb
    cdef public dict obj_by_name
    cdef public object percpu_bytes
    cdef public object policy
    cdef public list queue
    cdef public object queue_seq
    cdef public dict reclaim_pos
    cdef public list release_q
    cdef public long long reserved  # pages (overflowcheck: never wraps)
    cdef public long long resident  # pages (overflowcheck: never wraps)
    cdef public object sampler
    cdef public dict slot_cache
    cdef public object slot_cache_enabled
    cdef public dict slot_cache_fill
    cdef public dict sock_by_name
    cdef public long long swap_total  # pages (overflowcheck: never wraps)
    cdef public long long swap_used  # pages (overflowcheck: never wraps)
    cdef public list t_alive
    cdef public list t_anon
    cdef public list t_cg
    cdef public set t_killed
    cdef public list t_kmem
    cdef public list t_kpages
    cdef public list t_maps
    cdef public list t_name
    cdef public list t_pins
    cdef public list t_regions
    cdef public list t_seq
    cdef public list t_swap
    cdef public dict task_by_name
    cdef public object tasks_started
    cdef public dict wb_inodes
    cdef public dict wb_pinned
