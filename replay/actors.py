"""The Ray shard actor: a thin remote wrapper over ``replay.shard.Shard``.

In: a ``ShardSpec`` (by value; its store reconnects by URL in the actor's process).
Out: the shard's ``StepResult``s and final results, returned to the coordinator as columnar
batches. All logic lives in ``Shard`` so that the local executor runs exactly the same code.

On a restart (the actor process died) Ray calls ``__init__`` again with the same spec, and the
shard reloads its newest checkpoint from the run store; ``advance_to`` is idempotent, so Ray's
retry of the interrupted call (``max_task_retries``) returns what the lost call would have.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import ray

from replay.shard import Shard, ShardSpec, StepResult, node_scratch


class ShardHost:
    """Holds one ``Shard`` inside an actor process."""

    def __init__(self, spec: ShardSpec) -> None:
        self.shard = Shard(spec)

    def advance_to(self, t_us: int, ack_us: int, checkpoint: bool = False) -> StepResult:
        """See ``Shard.advance_to`` (idempotent)."""
        return self.shard.advance_to(t_us, ack_us, checkpoint)

    def finish(self, t_us: int = -1) -> dict[str, Any]:
        """See ``Shard.finish``."""
        return self.shard.finish(t_us)

    def pid(self) -> int:
        """The actor's process id."""
        return self.shard.pid()

    def node(self) -> str:
        """Id of the Ray node this incarnation runs on."""
        return ray.get_runtime_context().get_node_id()

    def restored_from(self) -> int:
        """Simulated time of the checkpoint this incarnation started from (-1: none)."""
        return self.shard.restored_from


# num_cpus=0: shards are sized to the cluster's CPUs by the executor; an actor that asked for a
# CPU could stay pending forever when the driver's own work holds one (STACK.md §2 Scheduling).
ShardActor = ray.remote(num_cpus=0)(ShardHost)


@ray.remote(num_cpus=0, max_retries=0)
def remove_scratch(name: str) -> bool:
    """Remove run ``name``'s scratch folder on the node this task runs on; True if there was one."""
    path = node_scratch(name)
    existed = os.path.isdir(path)
    shutil.rmtree(path, ignore_errors=True)
    return existed
