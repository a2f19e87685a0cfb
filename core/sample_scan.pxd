# Compiled build: arguments annotated "MachineState" are typed, so their fields are read at fixed offsets.
from core.state cimport MachineState
from cpython.array cimport array

# the lifecycle states, the resident state and the parked flag the C scans compare with: C constants
cdef int _ONLINE, _FREED
cdef signed char _RESIDENT_STATE, _PARKED_FLAG
cdef Py_ssize_t _FEW_ZOMBIES
