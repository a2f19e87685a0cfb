"""``python -m replay [overrides]``: the Hydra entry point (``-m`` sweeps with the basic launcher).

In: Hydra overrides (``policy=reparent trace=tiny executor=local seed=3``...). Out: the run's
outputs in Hydra's output directory (see ``replay.outputs``) and a short summary on stdout.
All the work is in ``replay.app.run``; this only hands it the composed config, and turns the
errors a user can fix (bad trace, unreachable store, bad parameter) into one clear message.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from replay.app import run_command
from replay.config import register_configs

register_configs()


def conf_dir() -> str:
    """The Hydra configs: ``conf/`` beside the package in a checkout (or an editable install),
    else the copy a wheel carries as ``replay/conf/`` (setup.py puts it there)."""
    here = Path(__file__).resolve().parent
    checkout = here.parent / "conf"
    if (checkout / "config.yaml").is_file() and (checkout / "policy").is_dir():
        return str(checkout)
    return str(here / "conf")


@hydra.main(config_path=conf_dir(), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Run one job of the (multi)run."""
    status = run_command(cfg)
    if status:
        sys.exit(status)


if __name__ == "__main__":
    main()
