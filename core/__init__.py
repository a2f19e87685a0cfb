"""memcg-replay's model of one machine: memcg hierarchy, page core, reclaim, swap, policies, cost.

Pure Python + numpy; imports no Ray, Hydra, pandas, pyarrow or redis.
Entry points: ``core.machine.Machine`` / ``MachineConfig``, ``core.policy.make_policy``,
``core.events.EventBatch``, ``core.metrics.SAMPLE_COLUMNS``.
"""
