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

import dataclasses
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from core.errors import ConfigError
from core.memcontrol import swapin_charge_target

if TYPE_CHECKING:
    from core.state import MachineState


@dataclass
class Knobs:
    """A policy's knobs: one dataclass per policy (``Policy.Knobs``), the one place for their
    types and defaults.

    ``replay.config`` nests every policy's class under ``policy.knobs.<name>`` of the Hydra
    schema, so a misspelt knob or a wrong type fails when the config is composed; building one
    (also from a plain dict, through ``make_policy``) checks each field against its annotated
    type and then the policy's own rules (``check``), raising ``ConfigError`` naming the knob.
    """

    policy: ClassVar[str] = "none"

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            setattr(self, f.name, _typed(self.policy, f.name, getattr(self, f.name), hints[f.name]))
        self.check()

    def check(self) -> None:
        """Rules a knob's type cannot say (ranges, choices); raise ``ConfigError``."""


#: the base knobs type, for annotations inside ``Policy`` (where ``Knobs`` names the class attribute)
AnyKnobs = Knobs


def _typed(policy: str, knob: str, value: Any, want: type) -> Any:
    """``value`` as ``want`` (int, float, bool or str); an integral float is an int, an int a float."""
    if want is bool and isinstance(value, bool):
        return value
    if want is int and isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer():
        return int(value)
    if want is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if want is str and isinstance(value, str):
        return value
    raise ConfigError(f"policy {policy}: {knob}={value!r} is not of type {want.__name__}")


class Policy:
    """The kernel as it is (v6.1–v6.18): nothing is done about zombies.

    LRU pages and swap entries keep a removed memcg alive; kmem is reparented
    (KERNEL-MODEL.md §1). Subclasses override only the hooks they need.
    """

    name = "none"
    source = "kernel today (v6.1–v6.18): mm/memcontrol.c mem_cgroup_css_offline"
    wants_access = False
    #: ``charge_target`` and ``swapin_target`` are the kernel's own (set for each class by
    #: ``__init_subclass__``, for a composition by its parts): the fault path then applies the
    #: kernel's rules itself instead of calling two Python hooks per charged range
    kernel_targets = True
    Knobs: ClassVar[type[AnyKnobs]] = AnyKnobs  #: this policy's knobs (none for ``none``)

    def __init__(self, knobs: AnyKnobs | None = None) -> None:
        self.knobs = knobs if knobs is not None else self.Knobs()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.kernel_targets = cls.charge_target is Policy.charge_target and cls.swapin_target is Policy.swapin_target

    def attach(self, machine: MachineState) -> None:
        """Called once when the machine is built (schedule first ticks here)."""

    def pre_rmdir(self, machine: MachineState, memcg: int) -> None:
        """Right before a successful rmdir of ``memcg``."""

    def css_offline(self, machine: MachineState, memcg: int) -> None:
        """``memcg`` has just gone offline (dying)."""

    def on_access(self, machine: MachineState, obj: int, lo: int, hi: int, memcg: int, how: str) -> None:
        """Task of ``memcg`` touches pages [lo, hi) of ``obj``; ``how`` in read/write/map/unmap."""

    def charge_target(self, machine: MachineState, obj: int, memcg: int) -> int:
        """Memcg charged for instantiating a page of ``obj`` by a task of ``memcg`` (first touch)."""
        return memcg

    def swapin_target(self, machine: MachineState, run: int, record: int, memcg: int) -> int:
        """Memcg charged when a task of ``memcg`` swaps in ``run`` recorded to ``record``.

        mem_cgroup_swapin_charge_folio: the recorded memcg if it is online, else the faulting task's.
        """
        return swapin_charge_target(machine, record, memcg)

    def object_freed(self, machine: MachineState, obj: int) -> None:
        """The object ``obj`` and all its pages are gone."""

    def describe(self) -> dict[str, Any]:
        """Name, source and knob values, for outputs."""
        return {"name": self.name, "source": self.source, "knobs": dataclasses.asdict(self.knobs)}


class Composite(Policy):
    """Several policies in order (``a+b``): hooks run in turn; targets chain through them."""

    def __init__(self, parts: list[Policy]) -> None:
        super().__init__()
        self.parts = parts
        self.name = "+".join(p.name for p in parts)
        self.source = "; ".join(p.source for p in parts)
        self.wants_access = any(p.wants_access for p in parts)
        self.kernel_targets = all(p.kernel_targets for p in parts)

    def attach(self, machine: MachineState) -> None:
        for p in self.parts:
            p.attach(machine)

    def pre_rmdir(self, machine: MachineState, memcg: int) -> None:
        for p in self.parts:
            p.pre_rmdir(machine, memcg)

    def css_offline(self, machine: MachineState, memcg: int) -> None:
        for p in self.parts:
            p.css_offline(machine, memcg)

    def on_access(self, machine: MachineState, obj: int, lo: int, hi: int, memcg: int, how: str) -> None:
        for p in self.parts:
            if p.wants_access:
                p.on_access(machine, obj, lo, hi, memcg, how)

    def charge_target(self, machine: MachineState, obj: int, memcg: int) -> int:
        for p in self.parts:
            memcg = p.charge_target(machine, obj, memcg)
        return memcg

    def swapin_target(self, machine: MachineState, run: int, record: int, memcg: int) -> int:
        target = Policy.swapin_target(self, machine, run, record, memcg)
        for p in self.parts:
            if type(p).swapin_target is not Policy.swapin_target:
                target = p.swapin_target(machine, run, record, memcg)
        return target

    def object_freed(self, machine: MachineState, obj: int) -> None:
        for p in self.parts:
            p.object_freed(machine, obj)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "parts": [p.describe() for p in self.parts]}


#: name -> factory(**knobs) for every policy; filled by ``register``.
REGISTRY: dict[str, type[Policy]] = {}


def register(cls: type[Policy]) -> type[Policy]:
    """Class decorator: make ``cls`` available to ``make_policy`` under ``cls.name``."""
    REGISTRY[cls.name] = cls
    return cls


register(Policy)


def make_policy(spec: str, knobs: Mapping[str, Any] | Any = None) -> Policy:
    """Build the policy named by ``spec`` (``a`` or ``a+b+…``) with per-policy knobs.

    ``knobs`` maps a policy name to its ``Knobs`` instance or to a dict of knob values (missing
    ones take the defaults of the policy's ``Knobs``), as a mapping or as an object with one
    attribute per policy (``replay.config``'s typed ``policy.knobs``); an unknown knob, a wrong
    type or a value out of range raises ``ConfigError`` naming it.
    """
    if knobs is None:
        knobs = {}
    names = [s.strip() for s in spec.split("+") if s.strip()]
    if not names:
        raise ConfigError("policy: empty name")
    parts = []
    for name in names:
        if name not in REGISTRY:
            raise ConfigError(f"policy: unknown {name!r}; known: {', '.join(sorted(REGISTRY))}")
        cls = REGISTRY[name]
        given = knobs.get(name) if isinstance(knobs, Mapping) else getattr(knobs, name, None)
        if isinstance(given, cls.Knobs):
            parts.append(cls(given))
            continue
        given = dict(given or {})
        unknown = sorted(set(given) - {f.name for f in dataclasses.fields(cls.Knobs)})
        if unknown:
            known = ", ".join(f.name for f in dataclasses.fields(cls.Knobs)) or "none"
            raise ConfigError(f"policy {name}: unknown knob {', '.join(unknown)} (knobs: {known})")
        parts.append(cls(cls.Knobs(**given)))
    return parts[0] if len(parts) == 1 else Composite(parts)


from core import policies as _policies  # noqa: E402,F401  (registers every policy)

#: Every policy name ``make_policy`` accepts (compositions aside).
POLICY_NAMES: tuple[str, ...] = tuple(sorted(REGISTRY))
