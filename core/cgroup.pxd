# Compiled build: arguments annotated "MachineState" are typed, so their fields are read at fixed offsets.
from core.state cimport MachineState
from core.memcg cimport MemcgTable
from core.run_index cimport i32_at

# dropping a memcg reference and freeing what nothing holds: C calls from the modules that cimport them
cpdef css_put(MachineState machine, Py_ssize_t m)
cpdef css_release_work(MachineState machine)
