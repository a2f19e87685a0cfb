"""Sharing-inference rules: which co-resident tasks share page cache or tmpfs.

In: nothing (rules are parameters). Out: ``Rule`` records and ``parse_rules``,
which turns CLI settings like ``job_image=128MiB`` or ``user_libs=off`` into
the rule set an importer applies.

No public trace says which files two containers share; these rules state the
inference openly and each can be switched off or resized:

``job_image``
    Tasks of one job (Alibaba: one app_du; batch: one job) on one machine run
    the same binary and image layers: one file ``image/<job>`` per machine,
    read whole by every task at its start; ``mapped_fraction`` of it is mmapped
    (text and libraries). The machine's agent fills its page cache before the
    first task starts (``owner="agent"``), as Borg's Borglet and a container
    runtime install packages and image layers: the pages are charged to the
    agent's cgroup ``/agent`` and the tasks, finding them cached, are charged
    nothing (first touch owns). ``owner="first"`` charges the first task
    instead. The file is never deleted, so its pages linger until reclaim; a
    task refaulting an evicted page is charged for it.
``user_libs``
    Tasks of one user on one machine share a library/tool set ``libs/<user>``
    (Google 2011 user hash), mapped by every task; installed by the agent too.
``pod_tmpfs``
    Containers of one pod (Google 2019: tasks in one alloc instance) share a
    tmpfs volume ``tmpfs/<pod>``: the pod's first task writes it, the others map
    it; it is deleted when the pod's cgroup goes away. The writer owns its pages
    (``owner="first"``): the data is the pod's own, written by its task.

The reasoning for the owners and sizes is in docs/importers.md, "Sharing rules".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

MiB = 1 << 20

#: who fills a shared file's page cache: the machine's agent, or the group's first task
OWNERS = ("agent", "first")
#: cgroup and task of the machine agent that installs images and libraries (``owner="agent"``)
AGENT_CGROUP, AGENT_TASK = "/agent", "agent"


@dataclass(frozen=True)
class Rule:
    """One sharing rule: tasks with equal ``key`` on one machine share object ``prefix + key``."""

    name: str
    key: str
    prefix: str
    nbytes: int
    mapped_fraction: float
    tmpfs: bool = False
    enabled: bool = True
    owner: str = "first"  #: "agent": the machine agent fills the page cache; "first": the first task does


DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("job_image", "job", "image/", 256 * MiB, 0.25, owner="agent"),
    Rule("user_libs", "user", "libs/", 64 * MiB, 1.0, owner="agent"),
    Rule("pod_tmpfs", "pod", "tmpfs/", 32 * MiB, 1.0, tmpfs=True),
)

_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """'256MiB', '1.5G', '4096' -> bytes (binary units). ValueError on anything else."""
    m = _SIZE_RE.match(text)
    if not m:
        raise ValueError(f"not a size: {text!r}")
    unit = (m.group(2) or "").lower().rstrip("b").rstrip("i")
    return int(float(m.group(1)) * _UNITS[unit])


def parse_rules(settings: list[str] | None, base: tuple[Rule, ...] = DEFAULT_RULES) -> tuple[Rule, ...]:
    """Apply ``NAME=off|on|agent|first|SIZE[:MAPPED_FRACTION[:OWNER]]`` settings to ``base``."""
    rules = {r.name: r for r in base}
    for item in settings or []:
        name, _, value = item.partition("=")
        if name not in rules or not value:
            raise ValueError(f"--share {item!r}: expected RULE=off|on|agent|first|SIZE[:FRACTION[:OWNER]], "
                             f"rules: {', '.join(rules)}")
        rules[name] = _apply(rules[name], value.strip().lower())
    return tuple(rules.values())


def _apply(rule: Rule, value: str) -> Rule:
    if value in ("off", "no", "0"):
        return replace(rule, enabled=False)
    if value in ("on", "yes"):
        return replace(rule, enabled=True)
    if value in OWNERS:
        return replace(rule, owner=_owner(rule, value), enabled=True)
    size, _, rest = value.partition(":")
    frac, _, owner = rest.partition(":")
    fraction = float(frac) if frac else rule.mapped_fraction
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"{rule.name}: mapped fraction {fraction} outside [0, 1]")
    return replace(rule, nbytes=parse_size(size), mapped_fraction=fraction,
                   owner=_owner(rule, owner or rule.owner), enabled=True)


def _owner(rule: Rule, owner: str) -> str:
    if owner not in OWNERS:
        raise ValueError(f"{rule.name}: owner {owner!r} is not one of {', '.join(OWNERS)}")
    if rule.tmpfs and owner != "first":
        raise ValueError(f"{rule.name}: a tmpfs volume is written by the pod's first task (owner 'first' only)")
    return owner


def describe(rules: tuple[Rule, ...]) -> str:
    """One line per rule, for reports and --help."""
    return "; ".join(f"{r.name}={'off' if not r.enabled else f'{r.nbytes >> 20}MiB:{r.mapped_fraction:g}:{r.owner}'}"
                     for r in rules)
