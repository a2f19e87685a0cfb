# Compiled build: arguments annotated "MachineState" are typed, so their fields are read at fixed offsets.
from core.state cimport MachineState
from cpython.array cimport array

# the lifecycle states the compiled zombie scan compares with: C constants
cdef int _ONLINE, _FREED
cdef long long _HALF32, _MASK32
