# Compiled build: arguments annotated "MachineState" are typed, so their fields are read at fixed offsets.
from core.state cimport MachineState
from core.page_counter cimport mem_cgroup_charge_statistics
from core.fs_writeback cimport dirty_now, inode_meta_dirty, set_inode_times

# freeing pages and objects: C calls from core.syscalls, core.rmap and core.task
cpdef free_if_unused(MachineState machine, int o)
cpdef free_range(MachineState machine, int o, long long lo, long long hi)
cpdef free_object(MachineState machine, int o)
