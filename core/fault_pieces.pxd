# Compiled build: arguments annotated "MachineState" are typed, so their fields are read at fixed offsets.
from cpython.array cimport array, clone
from core.memcg cimport MemcgTable, check_slot
from core.memcontrol cimport swapin_charge_target
from core.pages cimport RunTable
from core.run_index cimport object_segments
from core.page_counter cimport low_wmark_pages, nr_free_pages
from core.rmap cimport maps_pages
from core.state cimport MachineState

cdef signed char _ANON, _FILE, _RESIDENT, _SWAPPED

# the size of a fault's pieces: C calls from core.memory's fault paths
cpdef long long piece_pages(MachineState machine, int o, dict need) except -1
cpdef long long piece_pages_one(MachineState machine, int o, int m, long long n) except -1
cpdef tight_chain(MachineState machine, Py_ssize_t m, long long pages, list tight)
cpdef long long piece_cap(MachineState machine, int o, long long total, list tight) except -1
# a fault's segments and payers: C calls from core.memory's fault paths
cpdef array fault_segments(RunTable R, int o, long long lo, long long hi)
cpdef int seg_target(MachineState machine, int o, Py_ssize_t r, int accessor) except? -2
cpdef tuple fault_needs(MachineState machine, int o, long long lo, long long hi, int accessor, bint fill_holes)
