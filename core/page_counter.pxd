# Compiled build: arguments annotated "MachineState" are typed, so their fields are read at fixed offsets.
from core.state cimport MachineState
from core.cgroup cimport css_put
from core.memcg cimport add_i32
from core.zombie_gauges cimport touch
from core.run_index cimport i32_at

# a resident run's pages on its memcg's own counters (and its owner task's anon)
cdef int _count_own(MachineState machine, int o, Py_ssize_t m, int k, int mapc, long long n) except -1

# add or remove a run's pages on its memcg's counters: C calls from the compiled modules that cimport it
cpdef int mem_cgroup_charge_statistics(MachineState machine, Py_ssize_t r, int sign, bint reserved=*, bint hier=*,
                                       bint zap=*) except -1
# new resident pages on their memcg's counters: a C call from core.memory's fault paths
cpdef charge_new_resident(MachineState machine, int o, Py_ssize_t m, int k, int mapc, long long n)
# free pages machine-wide: a C call from the modules that cimport it
cpdef long long nr_free_pages(MachineState machine) except? -1
cpdef long long low_wmark_pages(MachineState machine) except? -1
# the LRU age a touched page gets now: a C call from core.memory's refault path
cpdef long long lru_age(MachineState machine) except? -1
