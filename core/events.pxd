# Static layout of core.events.TraceEvent for the compiled build (Cython reads it beside events.py):
# the machine's loop refills one event per row and the op handlers read it, each field a slot of
# the C struct. Fields keep Python object type: ints stay arbitrary-precision, as in the pure model.

cdef class TraceEvent:
    cdef public object source
    cdef public object row
    cdef public object cgroup
    cdef public object task
    cdef public object obj
    cdef public object offset
    cdef public object nbytes
    cdef public object flags
