# Compiled build: arguments annotated "MachineState" are typed, so their fields are read at fixed offsets.
from core.fault_pieces cimport fault_needs as _needs, piece_pages, piece_pages_one
from core.memcontrol cimport (mem_cgroup_handle_over_high, over_high_any, over_high_one, reclaim_over_high,
                              try_charge_memcg)
from core.page_counter cimport charge_new_resident, low_wmark_pages, mem_cgroup_charge_statistics, nr_free_pages
from core.pages cimport RunTable
from core.state cimport MachineState
from core.run_index cimport i8_at, i32_at, starts_right, store_int
from cpython.array cimport array

# run states and kinds compared on the per-event paths: C constants in the compiled build
cdef signed char _RESIDENT, _SWAPPED, _EVICTED

# the fault paths: C calls from compiled modules that cimport them (core/syscalls.pxd)
cpdef bint fault_range(MachineState machine, int t, int o, long long lo, long long hi, bint mayfail,
                       bint fill_holes=*, int dirty=*) except -1
cpdef bint _touch_if_resident(MachineState machine, int o, long long lo, long long hi, bint fill_holes,
                              int dirty=*) except -1
cpdef object _charge_range(MachineState machine, int t, int o, long long lo, long long hi, bint mayfail,
                           bint fill_holes)
cpdef bint _fault_hole(MachineState machine, int t, int o, long long lo, long long hi, bint mayfail,
                       int dirty) except -1
cpdef object _charge_rounds(MachineState machine, int t, int o, long long lo, long long hi, bint mayfail,
                            bint fill_holes, int accessor, dict need, array segs, dict have, int rounds)
cpdef bint _settle(MachineState machine, int o, long long lo, long long hi, bint fill_holes, int dirty,
                   tuple charged) except -1
cpdef _materialize(MachineState machine, int o, array segs, bint fill_holes, dict have, int dirty)
cpdef _new_resident(MachineState machine, int o, long long s, long long e, int memcg, int dirty=*)
cpdef _make_resident(MachineState machine, Py_ssize_t r, int memcg)
