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

from replay.app import run_command
from replay.config import register_configs

register_configs()


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Run one job of the (multi)run."""
    status = run_command(cfg)
    if status:
        sys.exit(status)


if __name__ == "__main__":
    main()
