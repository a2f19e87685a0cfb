"""Recorded kernel observations: what each exact kernel build showed, per scenario and step.

In: a ``parse.VmRun`` from a VM boot and the build it ran on (``fetch.Artifacts``);
or, later and without a VM, the committed record files.
Out: one small JSON file per (build, scenario) under ``tests/kernel_records/<build>/``,
holding only what ``compare`` reads (every online cgroup's ``nr_dying_descendants``,
``memory.current``, ``kernel`` and the usage keys, each step's shell status, and the
VM's free memory and watermarks at boot, which size the model's machine); the replay
of a record through the same model run and comparison as a live boot
(``run.model_result``); and the drift between two builds' records of one scenario.

Record layout (``format`` 1)::

    {"format": 1, "scenario": "high_reclaims_zombie", "trace_sha256": "...",
     "build": {"package": "linux-image-6.12.118+deb12-cloud-amd64",
               "version": "6.12.118-1~deb12u1", "release": "6.12.118+deb12-cloud-amd64",
               "upstream": "6.12.118", "lru_gen": true},
     "vm": {"mem_free": 460369920, "wmark_low": 860, "wmark_high": 1031, "pcp_free": 8101888},
     "rc": {"-1": 0, "0": 0, ...},
     "steps": {"-1": {"/": {"nr_dying_descendants": 0, ...}, ...}, ...}}

``pcp_free`` (bytes of free pages on the per-CPU lists, which MemFree leaves out) is in the
records of boots from 2026-12-07 on; an older record has MemFree only (read as 0).

The directory of a build is ``<uname -r>_<package version>``, so two package versions
with one ABI name (Debian's 6.1.0-57 can be 6.1.192-1 or -3) never share records.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from scripts.kernel_check.compare import USAGE_KEYS, Check, step_checks
from scripts.kernel_check.parse import VmRun

RECORD_DIR = Path(__file__).resolve().parents[2] / "tests" / "kernel_records"
FORMAT = 1
#: the cgroup files ``compare`` reads; everything else the VM printed is left out of records
RECORD_KEYS = ("nr_dying_descendants", "memory.current", "kernel", *USAGE_KEYS)


@dataclass(frozen=True)
class Build:
    """One exact kernel build."""

    package: str  #: Debian image package
    version: str  #: its Debian version
    release: str  #: uname -r
    lru_gen: bool  #: MGLRU on at boot (the model's lru_gen)

    @property
    def upstream(self) -> str:
        """Upstream stable release ("6.12.118"): the model's kernel setting for this build."""
        from scripts.kernel_check.fetch import upstream_version

        return upstream_version(self.version)

    @property
    def series(self) -> str:
        """"6.12" of "6.12.118"."""
        return ".".join(self.upstream.split(".")[:2])

    def named_by(self, kernels: list[str]) -> bool:
        """Is this the build of one of ``kernels`` as ``--kernel`` names them (a series or a package)?"""
        return any(k in (self.series, self.package) for k in kernels)

    @property
    def name(self) -> str:
        """Directory name under the record root: ``<uname -r>_<package version>``."""
        return f"{self.release}_{self.version}"

    @property
    def label(self) -> str:
        """How results name the build: ``uname -r (package version)``."""
        return f"{self.release} ({self.version})"

    @classmethod
    def from_artifacts(cls, art) -> "Build":
        return cls(art.package, art.version, art.release, art.lru_gen)

    def to_json(self) -> dict:
        return {"package": self.package, "version": self.version, "release": self.release,
                "upstream": self.upstream, "lru_gen": self.lru_gen}

    @classmethod
    def from_json(cls, d: dict) -> "Build":
        return cls(d["package"], d["version"], d["release"], bool(d["lru_gen"]))


def version_key(upstream: str) -> tuple[int, ...]:
    """'6.12.118' -> (6, 12, 118), for ordering builds."""
    return tuple(int(x) for x in upstream.split("."))


def trace_digest(path: Path) -> str:
    """SHA-256 of a scenario CSV: a record is only valid for the trace it was made from."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass(frozen=True)
class Record:
    """The kernel's observations of one scenario on one build."""

    scenario: str
    build: Build
    trace_sha256: str
    observed: VmRun

    @classmethod
    def from_run(cls, scenario_path: Path, build: Build, observed: VmRun) -> "Record":
        """Keep what ``compare`` reads of a live run."""
        steps = {step: {cg: {k: v for k, v in stats.items() if k in RECORD_KEYS} for cg, stats in cgs.items()}
                 for step, cgs in observed.steps.items()}
        vm = VmRun(release=observed.release, steps=steps, rc=dict(observed.rc), mem_free=observed.mem_free,
                   wmark_low=observed.wmark_low, wmark_high=observed.wmark_high, pcp_free=observed.pcp_free)
        return cls(Path(scenario_path).stem, build, trace_digest(scenario_path), vm)

    def to_json(self) -> dict:
        o = self.observed
        return {
            "format": FORMAT, "scenario": self.scenario, "trace_sha256": self.trace_sha256,
            "build": self.build.to_json(),
            "vm": {"mem_free": o.mem_free, "wmark_low": o.wmark_low, "wmark_high": o.wmark_high,
                   **({"pcp_free": o.pcp_free} if o.pcp_free else {})},
            "rc": {str(k): v for k, v in sorted(o.rc.items())},
            "steps": {str(step): {cg: dict(sorted(st.items())) for cg, st in sorted(cgs.items())}
                      for step, cgs in sorted(o.steps.items())},
        }

    @classmethod
    def from_json(cls, d: dict) -> "Record":
        if d.get("format") != FORMAT:
            raise ValueError(f"kernel record {d.get('scenario')!r}: format {d.get('format')!r}, expected {FORMAT}")
        build = Build.from_json(d["build"])
        vm = VmRun(release=build.release,
                   steps={int(s): {cg: {k: int(v) for k, v in st.items()} for cg, st in cgs.items()}
                          for s, cgs in d["steps"].items()},
                   rc={int(k): int(v) for k, v in d["rc"].items()},
                   mem_free=int(d["vm"]["mem_free"]), wmark_low=int(d["vm"]["wmark_low"]),
                   wmark_high=int(d["vm"]["wmark_high"]), pcp_free=int(d["vm"].get("pcp_free", 0)))
        return cls(d["scenario"], build, d["trace_sha256"], vm)

    def path(self, root: Path = RECORD_DIR) -> Path:
        return Path(root) / self.build.name / f"{self.scenario}.json"


def write_record(rec: Record, root: Path = RECORD_DIR) -> Path:
    """Write ``rec`` under ``root`` (atomically; one line per step keeps git diffs readable)."""
    from traces.io import atomic_write_text

    d = rec.to_json()
    steps = d.pop("steps")
    body = json.dumps(d, sort_keys=True)[:-1]
    lines = [f"  {json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in steps.items()]
    text = body + ', "steps": {\n' + ",\n".join(lines) + "\n}}\n"
    assert Record.from_json(json.loads(text)) == rec
    path = rec.path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    return path


def load_record(path: Path) -> Record:
    return Record.from_json(json.loads(Path(path).read_text()))


def load_records(root: Path = RECORD_DIR) -> list[Record]:
    """Every record under ``root``, ordered by build (series, then patch level) and scenario."""
    recs = [load_record(p) for p in sorted(Path(root).glob("*/*.json"))]
    return sorted(recs, key=lambda r: (version_key(r.build.upstream), r.build.name, r.scenario))


def builds(records: list[Record]) -> list[Build]:
    """The distinct builds of ``records``, oldest first."""
    seen: dict[str, Build] = {}
    for r in records:
        seen.setdefault(r.build.name, r.build)
    return sorted(seen.values(), key=lambda b: (version_key(b.upstream), b.name))


def previous_build(build: Build, records: list[Record]) -> Build | None:
    """The newest recorded build of the same series older than ``build`` (what drift compares to)."""
    older = [b for b in builds(records) if b.series == build.series
             and version_key(b.upstream) < version_key(build.upstream)]
    return older[-1] if older else None


def drift(old: Record, new: Record, cgroups: list[str]) -> list[Check]:
    """Kernel-vs-kernel checks of one scenario on two builds that fail: where the kernel changed.

    The same checks and tolerances as the model comparison (``compare.step_checks``, with
    the older build in the model's place), plus each step's shell status.
    """
    out: list[Check] = []
    for step in sorted(set(old.observed.steps) | set(new.observed.steps)):
        checks = step_checks(step, new.observed.steps.get(step, {}), old.observed.steps.get(step, {}), cgroups)
        checks.append(Check(step, "-", "failed", int(new.observed.rc.get(step, 0) != 0),
                            int(old.observed.rc.get(step, 0) != 0), 0))
        out.extend(c for c in checks if not c.ok)
    return out


def describe_drift(old: Record, new: Record, failed: list[Check]) -> str:
    """One block of text per drifting scenario: steps, and old -> new values."""
    head = f"{new.scenario}: {old.build.label} -> {new.build.label}"
    if not failed:
        return head + ": no change"
    lines = [head + f": steps {sorted({c.step for c in failed})} changed"]
    for c in failed:
        new_v, old_v = c.formatted()  # drift puts the newer build in the kernel's place
        lines.append(f"  step {c.step} {c.cgroup} {c.key}: {old_v} -> {new_v}")
    return "\n".join(lines)


def refresh(results: list, paths: list[Path], root: Path = RECORD_DIR) -> str:
    """Write the records of live ``results`` (run.run_suite) under ``root``; text: drift from earlier records.

    For each scenario: against the record of the same build it replaces (a change there
    means the kernel is not deterministic on it), and against the newest older build of the
    same series (what a stable update changed).
    """
    from scripts.kernel_check.translate import translate
    from traces.io import read_trace

    root = Path(root)
    before = load_records(root) if root.exists() else []
    by_key = {(r.build.name, r.scenario): r for r in before}
    by_path = {p.stem: p for p in paths}
    out: list[str] = []
    compared: dict[tuple[str, str], list[str]] = {}  # (old build, new build) -> scenarios that changed
    for res in results:
        new = Record.from_run(by_path[res.name], res.kernel_build, res.observed)
        cgroups = translate(read_trace(by_path[res.name]).to_pylist(), res.name).cgroups
        same = by_key.get((new.build.name, new.scenario))
        if same is not None and same.trace_sha256 == new.trace_sha256:
            failed = drift(same, new, cgroups)
            if failed:
                out.append("re-recorded on the same build, changed: " + describe_drift(same, new, failed))
        prev = previous_build(new.build, before)
        old = by_key.get((prev.name, new.scenario)) if prev else None
        if old is not None and old.trace_sha256 == new.trace_sha256:
            failed = drift(old, new, cgroups)
            # "" marks a scenario compared and unchanged
            compared.setdefault((old.build.label, new.build.label), []).append(
                describe_drift(old, new, failed) if failed else "")
        write_record(new, root)
    for (old_label, new_label), changed in compared.items():
        real = [c for c in changed if c]
        out.append(f"drift {old_label} -> {new_label}: {len(real)} of {len(changed)} scenarios changed")
        out.extend(real)
    return "\n".join(out)


class StaleRecord(ValueError):
    """A record made from another version of its scenario's trace: boot the VM again (--record)."""


def replay(rec: Record, scenario_path: Path | None = None):
    """The model's comparison with a recorded boot: ``run.model_result`` on the record's observations.

    The model runs with the build's upstream release as its kernel setting ("6.12.118")
    and MGLRU as the build booted it, on the machine size and watermarks the VM reported.
    """
    from scripts.kernel_check.run import SCENARIO_DIR, model_result

    path = Path(scenario_path) if scenario_path else SCENARIO_DIR / f"{rec.scenario}.csv"
    if trace_digest(path) != rec.trace_sha256:
        raise StaleRecord(f"{rec.path()}: recorded from another version of {path.name}; "
                          f"re-record it (python -m scripts.kernel_check --kernel {rec.build.package} --record)")
    return model_result(path, rec.observed, rec.build.upstream, rec.build.lru_gen, rec.build.label)
