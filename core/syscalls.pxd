# Compiled build: arguments annotated "MachineState" are typed, so their fields are read at fixed offsets.
from core.state cimport MachineState
from core.memory cimport fault_range
from core.fs_writeback cimport file_update_time, inode_attach_wb, set_inode_times, touch_atime
from core.events cimport TraceEvent
from core.cgroup cimport css_put
from core.kmem cimport kmem_free, kmem_new
from core.memcontrol cimport mem_cgroup_css_offline, mem_cgroup_handle_over_high
from core.rmap cimport add_count, map_object, unmap_object
from core.truncate cimport free_if_unused, free_object, free_range
from core.page_counter cimport nr_free_pages

# the per-event helpers: C calls from the handlers of this module
cpdef Py_ssize_t _cgroup(MachineState machine, TraceEvent ev)
cpdef Py_ssize_t _task(MachineState machine, TraceEvent ev)
cpdef Py_ssize_t _object(MachineState machine, TraceEvent ev)
cpdef Py_ssize_t _held_object(MachineState machine, TraceEvent ev, Py_ssize_t t)
cpdef _file_access(MachineState machine, TraceEvent ev, int how=*)
cdef int _READ, _WRITE, _MAP
cdef int _MAX, _HIGH, _MAYFAIL, _SHMEM, _MLOCK, _PAGE, _INODES  # trace flag bits: C constants
