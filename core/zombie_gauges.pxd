# Static layout of core.zombie_gauges.ZombieGauges for the compiled build: core/memcg.pxd types
# MemcgTable.zg with it, so the writers that mark a memcg (``touch``) make C calls.
from cpython.array cimport array

cdef class ZombieGauges:
    cdef public list dirty
    cdef public array flag
    cdef public array bits
    cdef public array charged
    cdef public array swapped
    cdef public array held
    cdef public long long charged_sum
    cdef public long long swapped_sum
    cdef public bint reordered
    cdef public tuple basis

    cpdef mark(self, Py_ssize_t m)
    cpdef lifecycle(self, Py_ssize_t m)
    cpdef refresh(self, object mem)
    cpdef tuple gauges(self, object mem)
    cpdef _recount(self, object mem)

cdef int _DYING_STATE, _CHILD_BIT
cdef long long _HALF32, _MASK32
cpdef int _held_bits(tuple cols, Py_ssize_t m, int child) except? -1
cpdef int touch(ZombieGauges zg, array state, Py_ssize_t m) except -1
cpdef tuple order_basis(array order, array off, Py_ssize_t nd)
cpdef Py_ssize_t online_slots(object mem) except -1


cdef inline int _at(array col, Py_ssize_t m):
    # zombie_gauges._at in C: element m of an int32 column, which the caller checked it has
    return col.data.as_ints[m]
