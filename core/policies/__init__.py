"""The zombie policies beyond ``none``, one module each; importing this registers them all.

In: nothing. Out: entries in ``core.policy.REGISTRY`` (see docs/policies.md for
what each does, its source and its knobs).
"""

from core.policies import (  # noqa: F401
                           manual_reclaim,
                           recharge_async_walk,
                           recharge_deferred,
                           recharge_evict,
                           recharge_mapper,
                           reparent,
                           smemcg,
                           swap_walk,
                           zombie_reaper,
)
