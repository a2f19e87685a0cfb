# Compiled build: the loop's machine and its one event are typed, so their fields are read and
# written at fixed offsets.
from core.events cimport TraceEvent
from core.state cimport MachineState
from core.cgroup cimport css_release_work
from core.metrics cimport Sampler
