# Compiled build: the table is typed, so its columns are read through their buffers.
from cpython.array cimport array
from core.memcg cimport MemcgTable
from core.run_index cimport append_int

cpdef enlist(MemcgTable mem, Py_ssize_t m, long long now)
cpdef unlist(MemcgTable mem, Py_ssize_t m)
cdef _count_dying(MemcgTable mem, Py_ssize_t a, int d)
