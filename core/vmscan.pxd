# Compiled build: arguments annotated "MachineState" are typed, so their fields are read at fixed offsets.
from core.page_counter cimport mem_cgroup_charge_statistics
from core.pages cimport RunTable
from cpython.array cimport array
from core.state cimport MachineState
from core.cgroup cimport css_release_work
from core.fs_writeback cimport dirty_now
from core.run_index cimport i8_at, i64_at, store_int

# run states and kinds, and the dying state, compared per run: C constants in the compiled build
cdef signed char _RESIDENT, _SWAPPED, _EVICTED, _FILE, _ANON
cdef int _DYING

# one run's reclaim: C calls inside the reclaim loop (and from compiled modules that cimport them)
cpdef long long _reclaim_run(MachineState machine, Py_ssize_t r, long long take) except? -1
cpdef remove_mapping(MachineState machine, Py_ssize_t r, bint count=*)
cpdef add_to_swap(MachineState machine, Py_ssize_t r, bint count=*)
