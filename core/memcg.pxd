# Static layout of core.memcg.MemcgTable for the compiled build (Cython reads it beside memcg.py):
# each field is a slot of the C struct, read at a fixed offset by compiled modules that know the
# table's type (core/state.pxd types MachineState.mem). The numeric columns are typed array.array
# objects, so compiled code reads an element through the array's buffer pointer
# (``col.data.as_longlongs`` for the int64 columns, ``col.data.as_ints`` for the int32 ones);
# the other fields keep Python object type.

from cpython.array cimport array
from core.run_index cimport append_int, i32_at, i64_at, store_int
from core.zombie_gauges cimport ZombieGauges


cdef class MemcgTable:
    cdef public array parent
    cdef public array state
    cdef public array born_us
    cdef public array offline_us
    cdef public array ntasks
    cdef public array holds_id
    cdef public array anon
    cdef public array file
    cdef public array shmem
    cdef public array kmem
    cdef public array kmem_pin
    cdef public array mapped
    cdef public array pinned
    cdef public array swap
    cdef public array usage
    cdef public array swap_usage
    cdef public array peak
    cdef public array max
    cdef public array high
    cdef public array pgscan
    cdef public array pgsteal
    cdef public array refault
    cdef public array oom_kill
    cdef public array nr_dying_desc
    cdef public array borrow
    cdef public array wb_pin
    cdef public array sock
    cdef public array nsock
    cdef public array noom
    cdef public array refault_tree
    cdef public array refault_snap
    cdef public tuple column_arrays
    cdef public object id_pool_size
    cdef public object ids_in_use
    cdef public object path
    cdef public object children
    cdef public object by_path
    cdef public object dying
    cdef public array dying_order
    cdef public array dying_off
    cdef public Py_ssize_t dying_holes
    cdef public object free_slots
    cdef public object released_paths
    cdef public object released
    cdef public object hidden
    cdef public ZombieGauges zg

    # the per-charge walks: C calls from compiled modules that know a table is a MemcgTable
    cpdef charge(self, Py_ssize_t m, long long pages)
    cpdef charge_swap(self, Py_ssize_t m, long long pages)
    cpdef count_refault(self, Py_ssize_t m, long long pages)
    cpdef Py_ssize_t over_limit(self, Py_ssize_t m, object pages) except? -2
    cpdef list over_high(self, Py_ssize_t m)
    cpdef Py_ssize_t nearest_online(self, Py_ssize_t m) except -1
    cpdef long long own_pages(self, Py_ssize_t m) except? -1
    # the lifecycle of a memcg (mkdir, rmdir, offline, release): C calls once per pod and memcg
    cpdef Py_ssize_t _new_slot(self, str path, Py_ssize_t parent, long long now) except -1
    cpdef tuple mkdir(self, str path, long long now)
    cpdef object rmdir_check(self, Py_ssize_t m)
    cpdef offline(self, Py_ssize_t m, long long now)
    cpdef put_id(self, Py_ssize_t m)
    cpdef bint held(self, Py_ssize_t m) except -1
    cpdef Py_ssize_t try_release(self, Py_ssize_t m, long long now) except -1
    cpdef _release(self, Py_ssize_t m, long long now)


# the lifecycle states the per-slot paths compare with: C constants in the compiled build
cdef int _ONLINE, _DYING, _FREED
cdef Py_ssize_t _PARENT_AT, _BORN_AT
cdef array _DEFAULTS
cdef long long _I64_MIN, _I64_MAX

# a slot past the table raises as in the pure build; ``col[m] += n`` on an int32 column
cpdef int check_slot(MemcgTable table, Py_ssize_t m) except -1
cpdef int add_i32(array col, Py_ssize_t m, long long n) except -1


cdef inline Py_ssize_t over_limit_c(MemcgTable t, Py_ssize_t m, long long n) except? -3:
    # MemcgTable.over_limit's walk for a C ``n`` (try_charge_memcg's), through the columns' buffers and
    # without making ``n`` a Python int: the first memcg from ``m`` up whose usage + n breaks its max, or -1;
    # -2 when ``m`` is not a slot of the table or a sum does not fit 64 bits (the method's own path decides)
    cdef long long u
    cdef long long *cu = t.usage.data.as_longlongs
    cdef long long *cmax = t.max.data.as_longlongs
    cdef int *cparent = t.parent.data.as_ints
    if not 0 <= m < t.parent.ob_size:
        return -2
    while m >= 0:
        u = cu[m]
        if (n > 0 and u > _I64_MAX - n) or (n < 0 and u < _I64_MIN - n):
            return -2
        if u + n > cmax[m]:
            return m
        m = cparent[m]
    return -1
