"""Zombie-memcg policies: the hooks a machine calls, the registry, composition.

In: a policy name such as ``"none"`` or ``"recharge_async_walk+swap_walk"``
and its knobs. Out: a ``Policy`` object whose hooks ``core.machine`` calls at
the points named after the kernel functions they stand for:

- ``pre_rmdir``    right before rmdir (user space still sees the cgroup: memory.reclaim works)
- ``css_offline``  at rmdir, after the kernel's own offline work (ID put, kmem reparenting)
- ``on_access``    mark_accessed / map / unmap / dirty of a range (only if ``wants_access``)
- ``charge_target``  which memcg a newly instantiated page is charged to (first touch by default)
- ``swapin_target``  which memcg a swap-in is charged to (mem_cgroup_swapin_charge_folio by default)
- ``object_freed`` an object's last page went away
- ``tick``         asynchronous work scheduled on the machine's own queue (``machine.schedule``)

Policies hold no reference to their machine between calls (they are pickled
with it), keep their state in plain containers, and draw randomness only from
``machine.rng``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from core.errors import ConfigError
from core.memcg import State

if TYPE_CHECKING:
    from core.state import MachineState


class Policy:
    """The kernel as it is (v6.1–v6.18): nothing is done about zombies.

    LRU pages and swap entries keep a removed memcg alive; kmem is reparented
    (KERNEL-MODEL.md §1). Subclasses override only the hooks they need.
    """

    name = "none"
    source = "kernel today (v6.1–v6.18): mm/memcontrol.c mem_cgroup_css_offline"
    wants_access = False

    def attach(self, machine: "MachineState") -> None:
        """Called once when the machine is built (schedule first ticks here)."""

    def pre_rmdir(self, machine: "MachineState", memcg: int) -> None:
        """Right before a successful rmdir of ``memcg``."""

    def css_offline(self, machine: "MachineState", memcg: int) -> None:
        """``memcg`` has just gone offline (dying)."""

    def on_access(self, machine: "MachineState", obj: int, lo: int, hi: int, memcg: int, how: str) -> None:
        """Task of ``memcg`` touches pages [lo, hi) of ``obj``; ``how`` in read/write/map/unmap."""

    def charge_target(self, machine: "MachineState", obj: int, memcg: int) -> int:
        """Memcg charged for instantiating a page of ``obj`` by a task of ``memcg`` (first touch)."""
        return memcg

    def swapin_target(self, machine: "MachineState", run: int, record: int, memcg: int) -> int:
        """Memcg charged when a task of ``memcg`` swaps in ``run`` recorded to ``record``.

        mem_cgroup_swapin_charge_folio: the recorded memcg if it is online, else the faulting task's.
        """
        return record if machine.mem.state[record] == State.ONLINE else memcg

    def object_freed(self, machine: "MachineState", obj: int) -> None:
        """The object ``obj`` and all its pages are gone."""

    def describe(self) -> dict[str, Any]:
        """Name, source and knob values, for outputs."""
        knobs = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return {"name": self.name, "source": self.source, "knobs": knobs}


class Composite(Policy):
    """Several policies in order (``a+b``): hooks run in turn; targets chain through them."""

    def __init__(self, parts: list[Policy]) -> None:
        self.parts = parts
        self.name = "+".join(p.name for p in parts)
        self.source = "; ".join(p.source for p in parts)
        self.wants_access = any(p.wants_access for p in parts)

    def attach(self, machine: "MachineState") -> None:
        for p in self.parts:
            p.attach(machine)

    def pre_rmdir(self, machine: "MachineState", memcg: int) -> None:
        for p in self.parts:
            p.pre_rmdir(machine, memcg)

    def css_offline(self, machine: "MachineState", memcg: int) -> None:
        for p in self.parts:
            p.css_offline(machine, memcg)

    def on_access(self, machine: "MachineState", obj: int, lo: int, hi: int, memcg: int, how: str) -> None:
        for p in self.parts:
            if p.wants_access:
                p.on_access(machine, obj, lo, hi, memcg, how)

    def charge_target(self, machine: "MachineState", obj: int, memcg: int) -> int:
        for p in self.parts:
            memcg = p.charge_target(machine, obj, memcg)
        return memcg

    def swapin_target(self, machine: "MachineState", run: int, record: int, memcg: int) -> int:
        target = Policy.swapin_target(self, machine, run, record, memcg)
        for p in self.parts:
            if type(p).swapin_target is not Policy.swapin_target:
                target = p.swapin_target(machine, run, record, memcg)
        return target

    def object_freed(self, machine: "MachineState", obj: int) -> None:
        for p in self.parts:
            p.object_freed(machine, obj)

    def __getattr__(self, name: str) -> Any:
        # queued ticks name a method of one part (e.g. "swap_walk_tick"); route them there
        if name.startswith("__") or name == "parts":
            raise AttributeError(name)
        for p in self.parts:
            if hasattr(p, name):
                return getattr(p, name)
        raise AttributeError(name)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "parts": [p.describe() for p in self.parts]}


#: name -> factory(**knobs) for every policy; filled by ``register``.
REGISTRY: dict[str, Callable[..., Policy]] = {}


def register(cls: type[Policy]) -> type[Policy]:
    """Class decorator: make ``cls`` available to ``make_policy`` under ``cls.name``."""
    REGISTRY[cls.name] = cls
    return cls


register(Policy)


def make_policy(spec: str, knobs: dict[str, dict[str, Any]] | None = None) -> Policy:
    """Build the policy named by ``spec`` (``a`` or ``a+b+…``) with per-policy knobs.

    ``knobs`` maps a policy name to keyword arguments of its constructor.
    """
    knobs = knobs or {}
    names = [s.strip() for s in spec.split("+") if s.strip()]
    if not names:
        raise ConfigError("policy: empty name")
    parts = []
    for name in names:
        if name not in REGISTRY:
            raise ConfigError(f"policy: unknown {name!r}; known: {', '.join(sorted(REGISTRY))}")
        try:
            parts.append(REGISTRY[name](**knobs.get(name, {})))
        except TypeError as exc:
            raise ConfigError(f"policy {name}: {exc}") from None
    return parts[0] if len(parts) == 1 else Composite(parts)


from core import policies as _policies  # noqa: E402,F401  (registers every policy)

#: Every policy name ``make_policy`` accepts (compositions aside).
POLICY_NAMES: tuple[str, ...] = tuple(sorted(REGISTRY))
