# Compiled build: arguments annotated "MachineState" are typed, so their fields are read at fixed offsets.
from core.state cimport MachineState
from core.page_counter cimport nr_free_pages
from core.memcg cimport MemcgTable
from core.zombie_gauges cimport ZombieGauges
from cpython.array cimport array, resize_smart

cdef int _fill_row(array rows, MachineState m, long long t_us, long long interval) except -1
