# Static layout of core.pages.RunTable for the compiled build (Cython reads it beside pages.py):
# each field is a slot of the C struct, read at a fixed offset by compiled modules that know the
# table's type (core/state.pxd types MachineState.runs). Columns are typed array.array objects, so
# compiled code reads an element through the array's buffer pointer (``col.data.as_ints``).

from cpython.array cimport array


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
    cdef public object mutations
    cdef public dict obj_runs
    cdef public dict obj_starts


# the state codes the per-event paths compare with: C constants in the compiled build
cdef signed char _FREE, _RESIDENT, _SWAPPED
