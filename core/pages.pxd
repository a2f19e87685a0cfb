# Static layout of core.pages.RunTable for the compiled build (Cython reads it beside pages.py):
# each field is a slot of the C struct, read at a fixed offset by compiled modules that know the
# table's type (core/state.pxd types MachineState.runs). Columns are typed array.array objects, so
# compiled code reads an element through the array's buffer pointer (``col.data.as_ints``).

from cpython.array cimport array
from core.run_index cimport append_int, delete_at, i32_at, insert_i32, object_segments, starts_left, starts_right, store_int


cdef class RunTable:
    cdef public array obj
    cdef public array start
    cdef public array npages
    cdef public array state
    cdef public array memcg
    cdef public array origin
    cdef public array mapc
    cdef public array pinc
    cdef public array age
    cdef public array kind
    cdef public array rflags
    cdef public array dirty
    cdef public list free
    cdef public long long mutations  # (overflowcheck: never wraps)
    cdef public long long foreign  # resident runs charged elsewhere than their origin (see pages.py)
    cdef public long long parked  # resident PARKED runs
    cdef public list obj_runs  # per object slot: its run ids by start, or None
    cdef public list obj_starts  # per object slot: those runs' starts, or None

    # the per-event methods: C calls from compiled modules that know a table is a RunTable,
    # Python methods for everyone else (same code: pages.py)
    cpdef Py_ssize_t new(self, int obj, int start, int npages, signed char state, int memcg, int origin,
                         int mapc, int pinc, int age, signed char kind, signed char rflags=*, int dirty=*) except -1
    cpdef drop(self, Py_ssize_t r)
    cpdef set_owner(self, Py_ssize_t r, signed char state, int memcg)
    cpdef int _tally(self, Py_ssize_t r, int sign) except -1
    cpdef retag(self, Py_ssize_t r, int origin, signed char rflags)
    cpdef link(self, Py_ssize_t r)
    cpdef Py_ssize_t split(self, Py_ssize_t r, int at) except -1
    cpdef Py_ssize_t _copy(self, Py_ssize_t r, int start, int npages) except -1
    cpdef Py_ssize_t _split_at(self, Py_ssize_t r, int at, array runs, array starts, Py_ssize_t i) except -1
    cpdef _drop_at(self, Py_ssize_t r, array runs, array starts, Py_ssize_t i)
    cpdef list segments(self, int o, long long lo, long long hi)
    cpdef coalesce(self, int o, long long lo, long long hi)
    cpdef list pieces(self, int o, long long lo, long long hi)
    cpdef Py_ssize_t isolate(self, Py_ssize_t r, long long lo, long long hi) except -1
    cpdef Py_ssize_t touch(self, Py_ssize_t r, long long lo, long long hi, int age, int dirty) except -1
    cpdef split_ends(self, int o, long long lo, long long hi)
    cpdef drop_object(self, int o)
    cpdef Py_ssize_t add_resident(self, int o, int start, int npages, int memcg, int mapc, int age, signed char kind,
                                  int dirty=*) except -1


# the state codes the per-event paths compare with: C constants in the compiled build
cdef signed char _FREE, _RESIDENT, _SWAPPED, _PARKED
cdef array _NO_I32
