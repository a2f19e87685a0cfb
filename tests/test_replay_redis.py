"""End to end against the real redis-server of ``.ci/run`` (``REDIS_URL``): replay, interruption, resume.

Skips when ``REDIS_URL`` is unset (``.ci/run`` sets it). The embedded store is stopped
before the resume, so only what the real server holds can carry the run over.
"""

from __future__ import annotations

import pytest
import redis

from replay import store as store_mod
from replay.app import run
from tests.test_replay_run import QUICK, Interrupt, _files

pytestmark = pytest.mark.redis


def test_replay_interrupted_and_resumed_through_a_real_redis(compose_replay, redis_url):
    base = [q for q in QUICK if not q.startswith("policy=")] + ["store=redis", f"store.url={redis_url}",
                                                                 "policy.names=[none,reparent]"]
    ref = run(compose_replay(*base, "store.cache=false", output="ref"))
    cut = compose_replay(*base, output="cut")
    r = redis.Redis.from_url(redis_url)
    try:
        steps: list[int] = []

        def die_in_the_second_policy_at_step_4(k, _executor):
            if steps and k < steps[-1]:
                steps.append(-1)  # the step numbers start again: the second policy
            steps.append(k)
            if -1 in steps and k == 4:  # t = 300 s; its last commit was at 240 s
                raise Interrupt

        with pytest.raises(Interrupt):
            run(cut, on_step=die_in_the_second_policy_at_step_4)
        assert any(r.scan_iter(match=f"{cut.store.namespace}:*"))  # the state is in the real server
        if store_mod._EMBEDDED is not None:
            store_mod._EMBEDDED.stop()  # a new process: nothing embedded survives

        resumed = run(compose_replay(*base, output="rerun"))
        assert resumed.cached == ["none"] and resumed.resumed == {"reparent": 240_000_000}
        for policy in ("none", "reparent"):
            assert _files(resumed.run_dir, policy) == _files(ref.run_dir, policy)
    finally:
        keys = list(r.scan_iter(match=f"{cut.store.namespace}:*"))
        if keys:
            r.delete(*keys)
