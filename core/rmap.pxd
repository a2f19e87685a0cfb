# Compiled build: arguments annotated "MachineState" are typed, so their fields are read at fixed offsets.
from core.state cimport MachineState
from core.pages cimport RunTable
from cpython.array cimport array
from core.run_index cimport starts_right
from core.truncate cimport free_if_unused
from core.zombie_gauges cimport touch

# run states and kinds compared on the per-event paths: C constants in the compiled build
cdef signed char _RESIDENT, _ANON

# mapping and unmapping: C calls from core.syscalls's handlers and core.task's exit
cpdef map_object(MachineState machine, int t, int o, long long lo, long long hi)
cpdef unmap_object(MachineState machine, int t, int o)
cpdef bint maps_pages(MachineState machine, int o) except -1
cpdef add_count(MachineState machine, int o, long long lo, long long hi, str field, int delta)
