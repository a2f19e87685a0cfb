# Static layout of core.events.TraceEvent for the compiled build (Cython reads it beside events.py):
# the machine's loop refills one event per row and the op handlers read it, each field a slot of
# the C struct. The numbers are C integers of their batch column's width (int64 row, offset and
# bytes, int32 flags), so the loop copies them from the columns' buffers without making an int
# object per field; the names stay Python strings (or None).

cdef class TraceEvent:
    cdef public object source
    cdef public long long row
    cdef public object cgroup
    cdef public object task
    cdef public object obj
    cdef public long long offset
    cdef public long long nbytes
    cdef public int flags
