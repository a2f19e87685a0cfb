# Compiled build: arguments annotated "MachineState" are typed, so their fields are read at fixed offsets.
from core.state cimport MachineState
from core.kmem cimport kmem_free
from core.memcg cimport add_i32
from core.rmap cimport unmap_object
from core.truncate cimport free_object
