"""``python -m replay [overrides]``: the Hydra entry point (``-m`` sweeps with the basic launcher).

In: Hydra overrides (``policy=reparent trace=tiny executor=local seed=3``...). Out: the run's
outputs in Hydra's output directory (see ``replay.outputs``) and a short summary on stdout.
All the work is in ``replay.app.run``; this only hands it the composed config, and turns the
errors a user can fix (bad trace, unreachable store, bad parameter) into one clear message.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from core.errors import ConfigError, TraceError
from replay.app import run
from replay.config import register_configs
from replay.store import StoreError

register_configs()


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Run one job of the (multi)run."""
    try:
        run(cfg)
    except (TraceError, StoreError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
