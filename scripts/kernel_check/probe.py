"""Probe a scenario's end state in the VM: extra shell steps after its last row (``--then``).

A disagreement such as a cgroup the kernel keeps dying asks what would free it: more time, a
second ``sync``, an unmount, a swapoff... ``--then SHELL`` (repeatable) boots one scenario with
each SHELL appended as a step of its own after the trace's last row, and prints after every step
from the trace's last row on how many dying cgroups the root counts, which cgroups exist, and the
``KC-LOG`` lines the steps wrote (``echo "KC-LOG ..." >&3`` in a SHELL reports a value).

In: one scenario CSV, the shell steps, a kernel (``fetch.fetch_all``). Out: ``ProbeResult``
(``table()`` renders it). The SHELL runs in init's shell with its helpers (``kc_drop_caches 3``,
``kc_swapoff``, ``kc_mkdir`` ...; scripts/kernel_check/init.sh) and with ``/mnt/disk`` the ext4 disk.

    python -m scripts.kernel_check atime_empty_read_random_1_9 --kernel 6.12 \\
        --then 'sleep 30; kc_drop_caches 3' --then 'umount /mnt/disk; kc_drop_caches 3'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from scripts.kernel_check import fetch, vm
from scripts.kernel_check.parse import VmOutputError, VmRun, parse_output
from scripts.kernel_check.translate import Script, translate
from traces.io import read_trace


def render_with_probes(script: Script, shells: list[str]) -> tuple[str, list[int]]:
    """The scenario's steps, then each shell as a step numbered after the last row; (text, probe steps)."""
    first = max((s.index for s in script.steps), default=-1) + 1
    text = script.render()
    numbers = list(range(first, first + len(shells)))
    for i, sh in zip(numbers, shells):
        text += f"kc_step {i}\n{sh}\nkc_done {i}\n"
    return text, numbers


@dataclass
class ProbeResult:
    """What the VM showed from the trace's last row on.

    Attributes:
        scenario, build: the scenario's name and the exact kernel build (uname -r).
        rows: (step, what ran: the trace row's op or the probe's shell, root's nr_dying_descendants,
            the cgroups that exist after the step) from the last trace row on.
        logs: the ``KC-LOG`` lines of the boot.
    """

    scenario: str
    build: str
    rows: list[tuple[int, str, int, list[str]]] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)

    def table(self) -> str:
        """The rows as text, then the logs."""
        out = [f"{self.scenario} on {self.build}", f"{'step':>4}  {'dying':>5}  {'cgroups':20s}  what"]
        for step, what, dying, cgroups in self.rows:
            out.append(f"{step:>4}  {dying:>5}  {' '.join(cgroups):20s}  {what}")
        return "\n".join(out + [f"log: {line}" for line in self.logs])


def probe_rows(script: Script, shells: list[str], numbers: list[int], observed: VmRun) -> list[tuple]:
    """``ProbeResult.rows`` from a boot's observations: the trace's last row and every probe step."""
    labels = {s.index: s.label for s in script.steps}
    labels.update(zip(numbers, shells))
    last = max(labels.keys() - set(numbers), default=-1)
    rows = []
    for step in [last, *numbers] if last >= 0 else numbers:
        if step not in observed.steps:
            raise VmOutputError(f"step {step} ({labels[step]!r}) did not finish in the VM")
        cgroups = sorted(observed.steps[step])
        rows.append((step, labels[step], observed.steps[step].get("/", {}).get("nr_dying_descendants", 0),
                     cgroups))
    return rows


def probe(path: Path, shells: list[str], kernel: str, cache: Path | None = None,
          accel: str = "auto") -> ProbeResult:
    """Boot ``path`` on ``kernel`` with ``shells`` after its last row (see the module docstring)."""
    cache = cache or fetch.default_cache()
    art = fetch.fetch_all(kernel, cache)
    script = translate(read_trace(path).to_pylist(), str(path))
    text, numbers = render_with_probes(script, shells)
    work = cache / "work" / f"probe-{kernel}"
    boot = vm.run_script(art, script, work, cache, accel=accel,
                         timeout=600.0 + sum(60.0 + _sleep_seconds(sh) for sh in shells), rendered=text)
    observed = parse_output(boot.output, boot.console)
    return ProbeResult(path.stem, observed.release, probe_rows(script, shells, numbers, observed), observed.logs)


def _sleep_seconds(shell: str) -> float:
    """The seconds a probe's ``sleep N`` words add to the boot (for its timeout)."""
    words, total = shell.replace(";", " ").split(), 0.0
    for a, b in zip(words, words[1:]):
        if a == "sleep":
            try:
                total += float(b)
            except ValueError:
                pass
    return total
