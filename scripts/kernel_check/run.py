"""Run scenario traces in the VM and in the simulator; collect the comparisons.

In: scenario trace paths (native schema, one machine each), a kernel (series
or exact package), the cache and work directories. Out: one ``compare.ScenarioResult`` per
(kernel, scenario), plus renderers for the agreement table (text and the
Markdown committed as docs/kernel-validation.md).

Each scenario gets its own boot (about 3–6 s under TCG), so scenarios never
see each other's zombies; boots run in parallel, one per host core.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from scripts.kernel_check import fetch, vm
from scripts.kernel_check.compare import ScenarioResult, compare
from scripts.kernel_check.parse import VmOutputError, VmRun, parse_output
from scripts.kernel_check.records import Build
from scripts.kernel_check.simulate import simulate
from scripts.kernel_check.translate import translate
from traces.io import read_trace

SCENARIO_DIR = Path(__file__).resolve().parents[2] / "tests" / "kernel_scenarios"


def scenario_paths(names: list[str] | None = None) -> list[Path]:
    """The suite's scenario CSVs (sorted), or the named ones (name or path)."""
    if not names:
        return sorted(SCENARIO_DIR.glob("*.csv"))
    out = []
    for n in names:
        p = Path(n) if Path(n).suffix else SCENARIO_DIR / f"{n}.csv"
        if not p.exists():
            raise FileNotFoundError(f"scenario {n}: no file {p}")
        out.append(p)
    return out


def model_result(path: Path, observed: VmRun, kernel: str, lru_gen: bool, build: str = "",
                 seconds: float = 0.0) -> ScenarioResult:
    """Run scenario ``path`` through the model as the VM ran it, and compare it with ``observed``.

    Used for a live boot and for a recorded one (``records``) alike. ``kernel`` is the
    model's kernel setting: the build's upstream release ("6.12.118") when known, else
    the series. The model's machine is what the VM had free at boot (its kernel, init
    and busybox use the rest): MemFree plus the free pages on the per-CPU lists, which
    MemFree leaves out and whose number varies from boot to boot (by 9.2 MB over 76 boots
    of 6.12.118, where MemFree plus them varied by 0.35 MB; records before 2026-12-07 have
    MemFree only), with the VM's watermarks.
    """
    table = read_trace(path)
    script = translate(table.to_pylist(), str(path))
    mem = observed.free_bytes // 4096 * 4096 or vm.VM_MEM_MIB * vm.MIB
    model = simulate(table, str(path), kernel, mem, lru_gen=lru_gen,
                     watermarks=(observed.wmark_low, observed.wmark_high))
    result = compare(path.stem, script, observed, model, seconds=seconds)
    result.build = build or observed.release
    return result


def run_scenario(path: Path, series: str, art: fetch.Artifacts, cache: Path, work: Path,
                 accel: str = "auto") -> ScenarioResult:
    """Boot once for ``path`` and compare every step with the model.

    The result names the exact build (``result.build``) and keeps what the VM showed
    (``result.observed``), which ``records`` writes down.
    """
    script = translate(read_trace(path).to_pylist(), str(path))
    boot = vm.run_script(art, script, work / path.stem, cache, accel=accel)
    observed = parse_output(boot.output, boot.console)
    if observed.release != art.release:
        raise VmOutputError(f"{path.stem}: the VM ran {observed.release!r}, expected {art.release!r}")
    result = model_result(path, observed, art.upstream or series, art.lru_gen, art.build, boot.seconds)
    result.accel = boot.accel
    result.observed = observed
    result.kernel_build = Build.from_artifacts(art)
    return result


def run_suite(paths: list[Path], series: str, cache: Path | None = None, work: Path | None = None,
              accel: str = "auto", jobs: int | None = None) -> list[ScenarioResult]:
    """Every scenario on one kernel (a series or an exact package), in parallel boots; results in ``paths`` order."""
    cache = cache or fetch.default_cache()
    art = fetch.fetch_all(series, cache)
    work = (work or cache / "work") / series
    if accel == "auto":  # probe once, before the parallel boots
        accel = "kvm" if vm.kvm_usable(cache, art, work) else "tcg"
    jobs = jobs or max(1, min(len(paths), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_scenario, p, series, art, cache, work, accel) for p in paths]
        return [f.result() for f in futures]


def agreement_rows(results: list[ScenarioResult]) -> list[tuple[str, ...]]:
    """(kernel build, scenario, steps agreeing, checks agreeing, verdict) per result."""
    rows = []
    for r in results:
        ok_checks = len(r.checks) - len(r.failures)
        rows.append((r.build or r.release, r.name, f"{r.steps_agreeing}/{len(r.steps)}",
                     f"{ok_checks}/{len(r.checks)}", "agree" if r.agrees else "DISAGREE"))
    return rows


def text_table(results: list[ScenarioResult]) -> str:
    """The agreement table as aligned text."""
    head = ("kernel build", "scenario", "steps", "checks", "verdict")
    rows = [head, *agreement_rows(results)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def markdown_table(results: list[ScenarioResult]) -> str:
    """The agreement table as Markdown rows (for docs/kernel-validation.md)."""
    lines = ["| kernel build (uname -r, package version) | scenario | steps agreeing | checks agreeing | verdict |",
             "|---|---|---|---|---|"]
    lines += [f"| {a} | `{b}` | {c} | {d} | {e} |" for a, b, c, d, e in agreement_rows(results)]
    return "\n".join(lines) + "\n"
