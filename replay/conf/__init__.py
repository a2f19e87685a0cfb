"""The Hydra configs of ``python -m replay`` / ``memcg-replay`` (a package so that Hydra finds them installed)."""
