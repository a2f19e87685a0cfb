# Static layout of core.pages.RunTable for the compiled build (Cython reads it beside pages.py):
# each field is a slot of the C struct, read at a fixed offset by compiled modules that know the
# table's type (core/state.pxd types MachineState.runs). Columns stay array.array objects.

cdef class RunTable:
    cdef public object obj
    cdef public object start
    cdef public object npages
    cdef public object state
    cdef public object memcg
    cdef public object origin
    cdef public object mapc
    cdef public object pinc
    cdef public object age
    cdef public object kind
    cdef public object rflags
    cdef public object dirty
    cdef public list free
    cdef public object mutations
    cdef public dict obj_runs
    cdef public dict obj_starts
