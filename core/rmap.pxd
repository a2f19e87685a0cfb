# Compiled build: arguments annotated "MachineState" are typed, so their fields are read at fixed offsets.
from core.state cimport MachineState
from core.pages cimport RunTable

# run states and kinds compared on the per-event paths: C constants in the compiled build
cdef signed char _RESIDENT, _ANON
