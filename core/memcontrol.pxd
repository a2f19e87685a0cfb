# Compiled build: arguments annotated "MachineState" are typed, so their fields are read at fixed offsets.
from core.memcg cimport check_slot, over_limit_c
from core.cgroup cimport css_put, css_release_work
from core.kmem cimport memcg_reparent_objcgs
from core.fs_writeback cimport wb_memcg_offline
from core.page_counter cimport low_wmark_pages, nr_free_pages
from core.state cimport MachineState

# the charge of every fault: a C call from the compiled modules that cimport it (core/memory.pxd)
cpdef bint try_charge_memcg(MachineState machine, Py_ssize_t m, long long n, bint mayfail, Py_ssize_t t) except -1

# the kernel's swap-in charge target, applied inline by the fault path when the policy keeps it
cdef int _ONLINE
cpdef Py_ssize_t swapin_charge_target(MachineState machine, Py_ssize_t record, Py_ssize_t memcg) except? -1

# after every charged fault: C calls from core.memory (memory.high breached anywhere, and its reclaim)
cpdef bint over_high_any(MachineState machine, dict have) except -1
cpdef bint over_high_one(MachineState machine, Py_ssize_t m) except -1
cpdef reclaim_over_high(MachineState machine, dict paid)

# an rmdir's offline and the reclaim over memory.high after a charge: C calls from core.syscalls
cpdef mem_cgroup_css_offline(MachineState machine, Py_ssize_t m)
cpdef mem_cgroup_handle_over_high(MachineState machine, Py_ssize_t m)
