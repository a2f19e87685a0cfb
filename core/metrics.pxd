# Compiled build: arguments annotated "MachineState" are typed, so their fields are read at fixed offsets.
from core.state cimport MachineState
from core.page_counter cimport nr_free_pages
from cpython.array cimport array, resize_smart


cdef inline int extend_q(array a, tuple vals) except -1:
    # metrics.extend_q in C: the ints of ``vals`` appended to an int64 array, grown once and stored through
    # its buffer (array.extend takes a tuple item by item, growing the array each time); an int that does
    # not fit is an OverflowError, and the array keeps its length
    cdef Py_ssize_t n = a.ob_size, k = len(vals), j
    if a.ob_descr.typecode != 113:
        raise TypeError("extend_q: not an int64 array")
    resize_smart(a, n + k)
    try:
        for j in range(k):
            a.data.as_longlongs[n + j] = vals[j]
    except BaseException:
        resize_smart(a, n)
        raise
    return 0
from core.memcg cimport MemcgTable
from core.zombie_gauges cimport ZombieGauges

cdef int _fill_row(array rows, MachineState m, long long t_us, long long interval) except -1
