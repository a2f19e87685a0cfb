"""`python -m scripts.kernel_check --cost`: the bytes one zombie memcg costs, measured in the VM.

In: kernels (series or package, as ``--kernel``), possible-CPU counts (``--cpus 1,2,4``) and
the number of zombies per boot (``--zombies``). Each boot (``-smp C``: C possible and
online vCPUs) makes the zombies in batches — a cgroup, one tmpfs page charged from a
process started inside it, rmdir (``helper zombies``) — and reads /proc/meminfo (Percpu,
Slab, VmallocUsed) after each batch, once the dying count has settled. It also reads
``shrinker_nr_max`` (``helper kpeek``, through /proc/kcore) and the percpu unit size.

Out: ``CostResult`` per (build, CPUs): bytes per zombie of percpu, slab and vmalloc, the
least-squares slope over the batches after the first (the first fills the free space of the
boot-time percpu chunk, which costs no new Percpu pages), and the model's figure for the
same machine (core.kernel.memcg_cost with the VM's own shrinker count).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.kernel import Kernel, memcg_cost
from scripts.kernel_check import fetch, vm
from scripts.kernel_check.parse import VmOutputError
from scripts.kernel_check.translate import Script

KIB = 1024
BATCHES = 8  #: meminfo points after the baseline; the slope uses points 1..BATCHES
COST_DIR = Path(__file__).resolve().parents[2] / "tests" / "kernel_scenarios" / "cost"
METRICS = ("percpu", "slab", "vmalloc")
_MEMINFO = {"Percpu": "percpu", "Slab": "slab", "VmallocUsed": "vmalloc", "SUnreclaim": "sunreclaim"}


def render_steps(zombies: int, batches: int = BATCHES) -> str:
    """The VM's steps: info lines, a baseline, then ``batches`` batches of zombies, each followed by a point.

    Output lines (ttyS1): ``KC-COST info KEY VALUE...``, ``KC-COST point I ZOMBIES KEY=kB...``,
    ``KC-COST error ...``.
    """
    bounds = [zombies * k // batches for k in range(batches + 1)]
    lines = [
        'kc_cost() { echo "KC-COST $*" >&3; }',
        "kc_cost_point() {",
        ("    kc_cost point $1 $2 $(awk '/^(Percpu|Slab|SUnreclaim|VmallocUsed):/ "
         "{sub(\":\", \"\", $1); printf \"%s=%s \", $1, $2}' /proc/meminfo)"),
        "}",
        # wait (at most 60 s) until the root counts $1 dying descendants, then 1 s more for RCU frees
        "kc_cost_settle() {",
        "    n=0; while [ $n -lt 600 ] && ! grep -q \"^nr_dying_descendants $1\\$\" $CG/cgroup.stat; do",
        "        sleep 0.1; n=$((n + 1)); done",
        ("    grep -q \"^nr_dying_descendants $1\\$\" $CG/cgroup.stat || "
         "kc_cost error dying $(tr '\\n' ' ' < $CG/cgroup.stat)"),
        "    sleep 1",
        "}",
        # per cache: bytes in slabs, objects, object size (the slab term's breakdown)
        "kc_cost_slabs() {",
        ("    awk -v i=$1 'NR > 2 {printf \"KC-COST slab %s %s %d %d %d\\n\", i, $1, $15 * $6 * 4096, $3, $4}' "
         "/proc/slabinfo >&3"),
        ("    awk -v i=$1 '{c[$3] += $2} END {for (k in c) printf \"KC-COST vmalloc %s %s %d\\n\", i, k, c[k]}' "
         "/proc/vmallocinfo >&3"),
        "}",
        "kc_cost info possible $(cat /sys/devices/system/cpu/possible)",
        "kc_cost info nodes $(cat /sys/devices/system/node/possible 2>/dev/null || echo 0)",
        "kc_cost info $(/bin/helper kpeek shrinker_nr_max 2>&1)",
        "kc_cost info unit $(dmesg | grep -o 'percpu: Embedded.*' | grep -o ' u[0-9]*' | tr -d ' u')",
        "echo 3 > /proc/sys/vm/drop_caches",
        "kc_cost_settle 0",
        "kc_cost_point 0 0",
    ]
    for k in range(1, batches + 1):
        lines += [
            (f"/bin/helper zombies $CG {bounds[k - 1]} {bounds[k]} /mnt/tmpfs/cost "
             f"|| kc_cost error zombies batch {k}"),
            f"kc_cost_settle {bounds[k]}",
            f"kc_cost_point {k} {bounds[k]}",
        ]
        if k in (1, batches):
            lines.append(f"kc_cost_slabs {k}")
    return "\n".join(lines) + "\n"


@dataclass
class CostResult:
    """One boot's measurement: bytes per zombie, and what it was measured on."""

    release: str  #: uname -r
    package: str
    version: str  #: the Debian package version
    series: str  #: the model's kernel: the build's upstream stable release, as every other check runs it
    cpus: int  #: possible CPUs
    zombies: int
    shrinker_nr_max: int
    unit_bytes: int  #: percpu unit size (the boot's "percpu: Embedded ... u<bytes>")
    points: list[dict[str, int]] = field(default_factory=list)  #: zombies, percpu, slab, ... (bytes)
    per_zombie: dict[str, float] = field(default_factory=dict)  #: percpu, slab, vmalloc, total
    #: slab cache or vmalloc caller -> bytes per zombie between the first and the last batch (>= 8 B)
    breakdown: dict[str, float] = field(default_factory=dict)
    nodes: int = 1  #: NUMA nodes (qemu -numa, the CPUs spread over them)

    def model(self, shrinkers: int | None = None) -> dict[str, int]:
        """The model's per-zombie bytes on this machine (its own shrinker count by default)."""
        s = self.shrinker_nr_max if shrinkers is None else shrinkers
        return asdict(memcg_cost(Kernel.parse(self.series), self.cpus, self.nodes, s))

    def error(self) -> float:
        """(model − measured) / measured of the total, in percent."""
        return 100.0 * (self.model()["total"] - self.per_zombie["total"]) / self.per_zombie["total"]


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys against xs."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den


def parse_output(text: str) -> tuple[dict[str, str], list[dict[str, int]], dict[str, dict[str, int]]]:
    """The info lines (key -> value), the points (bytes) and the per-cache dumps of one boot's output.

    The dumps map "slab:<cache>" or "vmalloc:<caller>" to {point index: bytes}.
    """
    info: dict[str, str] = {}
    points: list[dict[str, int]] = []
    dumps: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3 or parts[0] != "KC-COST":
            continue
        if parts[1] == "error":
            raise VmOutputError("cost: " + " ".join(parts[2:]))
        if parts[1] == "info":
            info[parts[2]] = " ".join(parts[3:])
        elif parts[1] == "point":
            point = {"zombies": int(parts[3])}
            for kv in parts[4:]:
                key, value = kv.split("=")
                point[_MEMINFO[key]] = int(value) * KIB
            points.append(point)
        elif parts[1] in ("slab", "vmalloc") and len(parts) >= 5:
            dumps.setdefault(f"{parts[1]}:{parts[3]}", {})[parts[2]] = int(parts[4])
    return info, points, dumps


def breakdown(dumps: dict[str, dict[str, int]], first: str, last: str, zombies: int) -> dict[str, float]:
    """Bytes per zombie of each slab cache / vmalloc caller that grew or shrank by >= 8 B per zombie."""
    out = {}
    for name, by_point in sorted(dumps.items()):
        per = (by_point.get(last, 0) - by_point.get(first, 0)) / zombies
        if abs(per) >= 8:
            out[name] = round(per, 1)
    return out


def per_zombie(points: list[dict[str, int]]) -> dict[str, float]:
    """Bytes per zombie of each metric: the slope over the points after the first batch."""
    used = points[1:] if len(points) > 2 else points
    xs = [float(p["zombies"]) for p in used]
    out = {m: slope(xs, [float(p[m]) for p in used]) for m in METRICS}
    out["total"] = sum(out[m] for m in METRICS)
    return out


def measure(kernel: str, cpus: int, zombies: int, cache: Path | None = None, accel: str = "auto",
            timeout: float = 1800.0, nodes: int = 1) -> CostResult:
    """Boot ``kernel`` with ``cpus`` possible CPUs on ``nodes`` NUMA nodes and measure ``zombies`` dying memcgs."""
    cache = cache or fetch.default_cache()
    art = fetch.fetch_all(kernel, cache)
    if not art.upstream:
        raise VmOutputError(f"cost: no package version for {art.release}, so no model kernel to compare with")
    work = cache / "work" / f"cost-{art.release}-{cpus}-{nodes}"
    mem_mib = 512 + zombies * (24 + 3 * cpus) // KIB  # a zombie: ~15 KiB slab, 4 KiB page, 2 KiB/CPU percpu

    boot = vm.run_script(art, Script("cost"), work, cache, accel=accel, timeout=timeout,
                         rendered=render_steps(zombies), possible_cpus=cpus, mem_mib=mem_mib, numa_nodes=nodes)
    if "KC-END" not in boot.output:
        raise VmOutputError(f"cost: the VM stopped early ({work}/console.log)\n{boot.console[-2000:]}")
    info, points, dumps = parse_output(boot.output)
    if len(points) != BATCHES + 1:
        raise VmOutputError(f"cost: {len(points)} points, expected {BATCHES + 1}")
    possible = info.get("possible", "")
    if possible != ("0" if cpus == 1 else f"0-{cpus - 1}"):
        raise VmOutputError(f"cost: the VM has possible CPUs {possible!r}, wanted {cpus}")
    if info.get("nodes", "") != ("0" if nodes == 1 else f"0-{nodes - 1}"):
        raise VmOutputError(f"cost: the VM has possible nodes {info.get('nodes')!r}, wanted {nodes}")
    nr_max = info.get("shrinker_nr_max", "")
    return CostResult(release=art.release, package=art.package, version=art.version,
                      series=art.upstream, cpus=cpus, zombies=zombies,
                      shrinker_nr_max=int(nr_max) if nr_max.lstrip("-").isdigit() else -1,
                      unit_bytes=int(info.get("unit") or 0), points=points, per_zombie=per_zombie(points),
                      breakdown=breakdown(dumps, "1", str(BATCHES), points[-1]["zombies"] - points[1]["zombies"]),
                      nodes=nodes)


def save(result: CostResult, directory: Path = COST_DIR) -> Path:
    """Write one measurement as JSON (tests/kernel_scenarios/cost/<release>-c<cpus>[-n<nodes>].json)."""
    directory.mkdir(parents=True, exist_ok=True)
    nodes = f"-n{result.nodes}" if result.nodes > 1 else ""
    path = directory / f"{result.release}-c{result.cpus}{nodes}.json"
    path.write_text(json.dumps(asdict(result), indent=1, sort_keys=True) + "\n")
    return path


def load(directory: Path = COST_DIR) -> list[CostResult]:
    """Every saved measurement, sorted by release, nodes and CPUs."""
    results = [CostResult(**json.loads(p.read_text())) for p in sorted(directory.glob("*.json"))]
    return sorted(results, key=lambda r: (r.release, r.nodes, r.cpus))


def table(results: list[CostResult]) -> str:
    """Markdown: measured bytes per zombie, the model's figure and its error, one row per boot."""
    rows = [("| kernel (uname -r) | possible CPUs | nodes | shrinker_nr_max | percpu | slab | vmalloc | total "
             "| model | error |"), "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        z = r.per_zombie
        rows.append(f"| {r.release} | {r.cpus} | {r.nodes} | {r.shrinker_nr_max} | {z['percpu']:,.0f} "
                    f"| {z['slab']:,.0f} | {z['vmalloc']:,.0f} | {z['total']:,.0f} | {r.model()['total']:,} "
                    f"| {r.error():+.1f}% |")
    return "\n".join(rows) + "\n"


def cost_main(kernels: list[str], cpus: list[int], zombies: int, cache: Path | None, accel: str,
              save_dir: Path | None, markdown: Path | None, nodes: int = 1) -> int:
    """``--cost``: measure every (kernel, CPUs) on ``nodes`` NUMA nodes and print the table.

    0 = every model total within 5 %, 1 = one is not, 2 = a VM failed.
    """
    from traces.io import atomic_write_text

    results = []
    for kernel in kernels:
        for c in cpus:
            try:
                r = measure(kernel, c, zombies, cache=cache, accel=accel, nodes=nodes)
            except VmOutputError as exc:
                print(f"kernel {kernel}, {c} CPUs: {exc}", file=sys.stderr)
                return 2
            print(f"# {r.release} ({r.version}), {c} possible CPUs, {nodes} node(s): "
                  f"total {r.per_zombie['total']:,.0f} B/zombie, model {r.model()['total']:,} ({r.error():+.1f}%)",
                  file=sys.stderr)
            if save_dir:
                save(r, save_dir)
            results.append(r)
    text = table(results)
    print(text)
    if markdown:
        atomic_write_text(markdown, text)
    return 0 if all(abs(r.error()) <= 5.0 for r in results) else 1
