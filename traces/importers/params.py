"""Parameters every importer shares; each importer's ``Params`` extends ``ImportParams``.

In: nothing. Out: the dataclass whose fields (and defaults, each an assumption
documented in docs/importers.md) are common to the Google 2011, Google 2019 and
Alibaba 2018 importers.
"""

from __future__ import annotations

from dataclasses import dataclass

from traces.importers.sharing import DEFAULT_RULES, Rule

GiB = 1 << 30


@dataclass(frozen=True)
class ImportParams:
    """What every importer needs: machine size, cgroup layout, memory split and sharing rules."""

    machine_bytes: int = 64 * GiB  #: bytes of a machine whose normalised capacity is 1.0
    job_parent: bool = True  #: nest a job's task cgroups under one cgroup per job
    machine_markers: bool = True  #: emit a `sync` row where a machine appears, so `info` sees it
    anon_fraction: float = 0.5  #: share of a task's memory taken as anon when no usage says otherwise
    cache_fraction: float = 0.25  #: share taken as private page cache when no usage says otherwise
    rules: tuple[Rule, ...] = DEFAULT_RULES  #: sharing-inference rules (docs/importers.md)
