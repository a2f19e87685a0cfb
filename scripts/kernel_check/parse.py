"""Parse what the VM printed into per-step observations.

In: the text of the VM's stat port (``KC <step> <cgroup> <key> <value>`` lines
written by init.sh's kc_dump; ``KC-BEGIN <release>``, ``KC-END``,
``KC-LOG``/``KC-FATAL`` lines) and the console log for error messages.
Out: ``VmRun``: for every step, the stats of every cgroup that existed in the
VM after it, and the step's exit status.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Stats = dict[str, int]  #: one cgroup's files: "memory.current", "anon", "nr_dying_descendants", ...


class VmOutputError(RuntimeError):
    """The VM did not run the script to its end (boot failure, timeout, fatal setup error)."""


@dataclass
class VmRun:
    """Observations of one boot.

    Attributes:
        release: ``uname -r`` inside the VM.
        steps: step index -> cgroup path -> stats (step -1 is the state before the first row).
        rc: step index -> shell status of the step (0 = every command succeeded).
        logs: ``KC-LOG`` lines (helper commands that failed), in order.
        mem_free: MemFree in bytes at boot, before the first step (0 if not reported).
        wmark_low, wmark_high: the zones' low and high watermarks, summed, in pages.
        pcp_free: bytes of free pages on the per-CPU page lists at that moment, which MemFree
            leaves out (0 if not reported: boots before 2026-12-07).
    """

    release: str = ""
    steps: dict[int, dict[str, Stats]] = field(default_factory=dict)
    rc: dict[int, int] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)
    mem_free: int = 0
    wmark_low: int = 0
    wmark_high: int = 0
    pcp_free: int = 0

    @property
    def free_bytes(self) -> int:
        """What the VM had free at boot: MemFree plus the free pages on the per-CPU lists."""
        return self.mem_free + self.pcp_free


def _parse_line(run: VmRun, line: str, lineno: int) -> None:
    parts = line.split()
    if len(parts) != 5:
        raise VmOutputError(f"VM output line {lineno}: expected 'KC step cgroup key value': {line!r}")
    _, step_s, cgroup, key, value = parts
    try:
        step, number = int(step_s), int(value)
    except ValueError:
        raise VmOutputError(f"VM output line {lineno}: step/value not integers: {line!r}") from None
    if key == "rc":
        run.rc[step] = number
    else:
        run.steps.setdefault(step, {}).setdefault(cgroup, {})[key] = number


def parse_output(text: str, console: str = "") -> VmRun:
    """Parse the stat port text; ``VmOutputError`` (with the console's tail) if it is incomplete."""
    run, ended = VmRun(), False
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("KC-BEGIN"):
            run.release = line.partition(" ")[2].strip()
        elif line == "KC-END":
            ended = True
        elif line.startswith("KC-FATAL"):
            raise VmOutputError(f"VM setup failed: {line[9:]}\n{_tail(console)}")
        elif line.startswith("KC-INFO mem "):
            try:
                fields = [int(x) for x in line.split()[2:]]
                run.mem_free, run.wmark_low, run.wmark_high = fields[:3]
                run.pcp_free = fields[3] if len(fields) > 3 else 0
            except ValueError:
                raise VmOutputError(f"VM output line {lineno}: expected 'KC-INFO mem FREE LOW HIGH [PCP]': "
                                    f"{line!r}") from None
        elif line.startswith("KC-LOG"):
            run.logs.append(line[7:])
        elif line.startswith("KC "):
            _parse_line(run, line, lineno)
    if not run.release:
        raise VmOutputError(f"the VM never reached its init\n{_tail(console)}")
    if not ended:
        raise VmOutputError(f"the VM stopped after step {max([*run.steps, *run.rc], default=-1)}\n{_tail(console)}")
    return run


def _tail(console: str, lines: int = 25) -> str:
    return "console (last lines):\n" + "\n".join(console.splitlines()[-lines:])
