# Compiled build: arguments annotated "MachineState" are typed, so their fields are read at fixed offsets.
from cpython.array cimport array
from core.state cimport MachineState
from core.cgroup cimport css_put
from core.run_index cimport append_int, store_int

cdef int _NOATIME, _LAZYTIME, _STRICTATIME

# the inode updates of a read, a write or an mmap: C calls from core.syscalls's handlers
cpdef inode_attach_wb(MachineState machine, Py_ssize_t t, Py_ssize_t o)
cpdef (long long, long long) inode_times(MachineState machine, Py_ssize_t o)
cpdef set_inode_times(MachineState machine, Py_ssize_t o, long long atime, long long mtime)
cpdef file_update_time(MachineState machine, Py_ssize_t o)
cpdef touch_atime(MachineState machine, Py_ssize_t t, Py_ssize_t o)
# a memcg's offline: a C call from mem_cgroup_css_offline, once per rmdir
cpdef wb_memcg_offline(MachineState machine, Py_ssize_t m)

# the dirtiness tests reclaim and the offline cgwb cleanup ask per run and per inode
cpdef bint dirty_now(MachineState machine, Py_ssize_t r) except -1
cpdef bint inode_meta_dirty(MachineState machine, Py_ssize_t o) except -1
cpdef bint inode_dirty(MachineState machine, Py_ssize_t o) except -1
cdef bint _any_inode_dirty(MachineState machine, list inodes) except -1
