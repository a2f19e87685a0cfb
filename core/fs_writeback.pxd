# Compiled build: arguments annotated "MachineState" are typed, so their fields are read at fixed offsets.
from core.state cimport MachineState

# the inode updates of a read, a write or an mmap: C calls from core.syscalls's handlers
cpdef inode_attach_wb(MachineState machine, Py_ssize_t t, Py_ssize_t o)
cpdef file_update_time(MachineState machine, Py_ssize_t o)
cpdef touch_atime(MachineState machine, Py_ssize_t t, Py_ssize_t o)
