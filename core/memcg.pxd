# Static layout of core.memcg.MemcgTable for the compiled build (Cython reads it beside memcg.py):
# each field is a slot of the C struct, read at a fixed offset by compiled modules that know the
# table's type (core/state.pxd types MachineState.mem). Fields keep Python object type.

cdef class MemcgTable:
    cdef public object parent
    cdef public object state
    cdef public object born_us
    cdef public object offline_us
    cdef public object ntasks
    cdef public object holds_id
    cdef public object anon
    cdef public object file
    cdef public object shmem
    cdef public object kmem
    cdef public object kmem_pin
    cdef public object mapped
    cdef public object pinned
    cdef public object swap
    cdef public object usage
    cdef public object swap_usage
    cdef public object peak
    cdef public object max
    cdef public object high
    cdef public object pgscan
    cdef public object pgsteal
    cdef public object refault
    cdef public object oom_kill
    cdef public object nr_dying_desc
    cdef public object borrow
    cdef public object wb_pin
    cdef public object sock
    cdef public object nsock
    cdef public object noom
    cdef public object refault_tree
    cdef public object refault_snap
    cdef public object id_pool_size
    cdef public object ids_in_use
    cdef public object path
    cdef public object children
    cdef public object by_path
    cdef public object dying
    cdef public object free_slots
    cdef public object released_paths
    cdef public object released
    cdef public object hidden
