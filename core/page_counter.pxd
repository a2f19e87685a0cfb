# Compiled build: arguments annotated "MachineState" are typed, so their fields are read at fixed offsets.
from core.state cimport MachineState
from cpython.array cimport array

# ``col[m] += n`` through an int32 column's buffer (the compiled per-event path only)
cdef int _add_i32(array col, Py_ssize_t m, long long n) except -1
# a resident run's pages on its memcg's own counters (and its owner task's anon)
cdef int _count_own(MachineState machine, int o, Py_ssize_t m, int k, int mapc, long long n) except -1
