# Compiled build: arguments annotated "MachineState" are typed, so their fields are read at fixed offsets.
from core.state cimport MachineState
from core.cgroup cimport css_put
from core.memcg cimport add_i32
from core.run_index cimport i32_at, i64_at, store_int

# kmem objects made, freed and reparented: C calls from core.syscalls, core.task and core.memcontrol
cpdef Py_ssize_t kmem_new(MachineState machine, Py_ssize_t t, Py_ssize_t m, long long n, bint slab, str name) except -1
cpdef kmem_free(MachineState machine, Py_ssize_t k)
cpdef bint kmem_pins(MachineState machine, Py_ssize_t k) except -1
cpdef kmem_account(MachineState machine, Py_ssize_t k, int sign, bint hier)
cpdef memcg_reparent_objcgs(MachineState machine, Py_ssize_t m)
