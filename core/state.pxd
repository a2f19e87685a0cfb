# Static layout of core.state.MachineState for the compiled build (Cython reads it beside state.py).
# Every field is a slot of the C struct, so a compiled module that knows a function argument is a
# MachineState (its own .pxd cimports it) reads a field at a fixed offset instead of a dict lookup.
# Fields keep Python object type: ints stay arbitrary-precision, exactly as in the pure model.
# ``__dict__`` keeps room for attributes set from outside (tests, policies).

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
    cdef public object counters
    cdef public object dropped_pins
    cdef public object failed_cgroups
    cdef public object failed_kmem
    cdef public object failed_socks
    cdef public object free_kmem
    cdef public object free_objs
    cdef public object free_tasks
    cdef public object i_dirty
    cdef public object i_times
    cdef public object k_memcg
    cdef public object k_name
    cdef public object k_pages
    cdef public object k_slab
    cdef public object k_task
    cdef public object kernel
    cdef public object kmem_by_name
    cdef public object kmem_of
    cdef public object kmem_total
    cdef public object machine_id
    cdef public object mem_total
    cdef public object memcg_cost
    cdef public object now_us
    cdef public object o_alive
    cdef public object o_deleted
    cdef public object o_kind
    cdef public object o_maps
    cdef public object o_name
    cdef public object o_owner
    cdef public object o_pins
    cdef public object o_size
    cdef public object o_wb
    cdef public object obj_by_name
    cdef public object percpu_bytes
    cdef public object policy
    cdef public object queue
    cdef public object queue_seq
    cdef public object reclaim_pos
    cdef public object release_q
    cdef public object reserved
    cdef public object resident
    cdef public object sampler
    cdef public object slot_cache
    cdef public object slot_cache_enabled
    cdef public object slot_cache_fill
    cdef public object sock_by_name
    cdef public object swap_total
    cdef public object swap_used
    cdef public object t_alive
    cdef public object t_anon
    cdef public object t_cg
    cdef public object t_killed
    cdef public object t_kmem
    cdef public object t_kpages
    cdef public object t_maps
    cdef public object t_name
    cdef public object t_pins
    cdef public object t_regions
    cdef public object t_seq
    cdef public object t_swap
    cdef public object task_by_name
    cdef public object tasks_started
    cdef public object wb_inodes
    cdef public object wb_pinned
