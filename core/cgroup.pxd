# Compiled build: arguments annotated "MachineState" are typed, so their fields are read at fixed offsets.
from core.state cimport MachineState

# dropping a memcg reference and freeing what nothing holds: C calls from the modules that cimport them
cpdef css_put(MachineState machine, Py_ssize_t m)
cpdef css_release_work(MachineState machine)
