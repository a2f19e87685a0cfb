# Compiled build: arguments annotated "MachineState" are typed, so their fields are read at fixed offsets.
from core.state cimport MachineState
from core.page_counter cimport nr_free_pages
from core.memcg cimport MemcgTable
from core.zombie_gauges cimport ZombieGauges
from cpython.array cimport array, resize_smart

cdef int _fill_row(array rows, MachineState m, long long t_us, long long interval) except -1


# the sampler of a machine: its fields at fixed offsets and its per-sample methods C calls from
# core.machine's clock loop (Machine.advance_to types its sampler)
cdef class Sampler:
    cdef public MachineState machine
    cdef public long long interval
    cdef public long long next_us
    cdef public bint full
    cdef public object _seen
    cdef public array _rows
    cdef public object _last

    cpdef sample(self, long long t_us)
    cpdef idle_until(self, long long t_us)
    cpdef bint can_idle(self) except -1
    cpdef _append(self, long long t_us)
