# Compiled build: arguments annotated "MachineState" are typed, so their fields are read at fixed offsets.
from core.state cimport MachineState
from core.memcontrol cimport try_charge_memcg
from core.page_counter cimport mem_cgroup_charge_statistics
from core.vmscan cimport add_to_swap, remove_mapping
