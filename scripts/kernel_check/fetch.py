"""Fetch and build everything the VM needs, idempotently, into a cache directory.

In: a kernel series ("6.1" = bookworm's cloud kernel, "6.12" = the bookworm
backport in bookworm-security) and the cache directory.
Out: ``Artifacts`` — paths of the kernel image, its module tree, the
busybox-static binary and our static helper — plus the host tools (qemu,
mkfs.ext4, gcc) installed with apt when missing.

Only Debian's own registries are used (``apt-get install`` / ``apt-get
download``); each package is fetched once and kept under the cache.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
KERNEL_META = {"6.1": "linux-image-cloud-amd64", "6.12": "linux-image-6.12-cloud-amd64"}
HOST_TOOLS = {"qemu-system-x86_64": "qemu-system-x86", "mkfs.ext4": "e2fsprogs", "gcc": "gcc"}
_APT_ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}


@dataclass(frozen=True)
class Artifacts:
    """Inputs of one VM boot."""

    vmlinuz: Path
    modules: Path  #: lib/modules/<release> of the kernel package
    release: str  #: uname -r of the kernel, e.g. 6.1.0-56-cloud-amd64
    busybox: Path
    helper: Path

    @property
    def config(self) -> dict[str, str]:
        """The kernel's build configuration (CONFIG_X -> value) from its package."""
        path = self.vmlinuz.parent / f"config-{self.release}"
        pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line.startswith("CONFIG_"))
        return {k: v for k, v in pairs}

    @property
    def lru_gen(self) -> bool:
        """MGLRU on at boot (CONFIG_LRU_GEN_ENABLED): on in Debian's 6.12, off in its 6.1."""
        return self.config.get("CONFIG_LRU_GEN_ENABLED") == "y"


def default_cache() -> Path:
    """~/.cache/memcg-replay/kernel-check, or $MEMCG_REPLAY_KC_CACHE."""
    env = os.environ.get("MEMCG_REPLAY_KC_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "memcg-replay" / "kernel-check"


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=_APT_ENV, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def ensure_host_tools(cache: Path) -> None:
    """apt-get install qemu-system-x86, e2fsprogs and gcc if any is missing (root only)."""
    missing = sorted({pkg for tool, pkg in HOST_TOOLS.items() if shutil.which(tool) is None})
    if not Path("/usr/lib/x86_64-linux-gnu/libc.a").exists():
        missing.append("libc6-dev")  # static glibc for the helper
    if not missing:
        return
    if os.geteuid() != 0:
        raise RuntimeError(f"missing host packages {missing}; install them (apt-get install) or run as root")
    _apt_update_once(cache)
    _run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing])


def _apt_update_once(cache: Path) -> None:
    # one `apt-get update` per cache: the package lists of a fresh machine are empty
    stamp = cache / "apt-updated"
    if not stamp.exists() or not _apt_has_lists():
        _run(["apt-get", "update", "-qq"])
        cache.mkdir(parents=True, exist_ok=True)
        stamp.touch()


def _apt_has_lists() -> bool:
    lists = Path("/var/lib/apt/lists")
    return lists.is_dir() and any(p.name.endswith("_Packages") for p in lists.iterdir())


def _resolve(meta: str, cache: Path) -> str:
    """The concrete package a meta package depends on (e.g. linux-image-6.1.0-56-cloud-amd64)."""
    out = _apt_query(["apt-cache", "depends", meta], cache)
    deps = [line.split(":", 1)[1].strip() for line in out.splitlines() if line.strip().startswith("Depends:")]
    images = [d for d in deps if d.startswith("linux-image-")]
    if not images:
        raise RuntimeError(f"apt-cache depends {meta}: no linux-image dependency in {out!r}")
    return images[0]


def _apt_query(cmd: list[str], cache: Path) -> str:
    try:
        out = _run(cmd)
        if out.strip():
            return out
    except RuntimeError:
        pass
    _apt_update_once(cache)
    return _run(cmd)


def _download(package: str, cache: Path) -> Path:
    """apt-get download PACKAGE into cache/debs once; returns the unpacked tree."""
    tree = cache / "pkgs" / package
    if (tree / ".complete").exists():
        return tree
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    if not list(debs.glob(f"{package}_*.deb")):
        _apt_query(["apt-cache", "show", package], cache)  # makes sure the lists exist
        _run(["apt-get", "download", package], cwd=debs)
    deb = sorted(debs.glob(f"{package}_*.deb"))[-1]
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    _run(["dpkg-deb", "-x", str(deb), str(tree)])
    (tree / ".complete").touch()
    return tree


def fetch_kernel(series: str, cache: Path) -> tuple[Path, Path, str]:
    """(vmlinuz, modules dir, release) of the Debian cloud kernel of ``series``."""
    if series not in KERNEL_META:
        raise ValueError(f"kernel series {series!r}: choose one of {sorted(KERNEL_META)}")
    tree = _download(_resolve(KERNEL_META[series], cache), cache)
    images = sorted((tree / "boot").glob("vmlinuz-*"))
    if not images:
        raise RuntimeError(f"{tree}: no boot/vmlinuz-* in the kernel package")
    release = images[-1].name.removeprefix("vmlinuz-")
    return images[-1], tree / "lib" / "modules" / release, release


def build_helper(cache: Path) -> Path:
    """Compile helper.c statically (cached by the source's hash)."""
    src = HERE / "helper.c"
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
    out = cache / f"helper-{digest}"
    if not out.exists():
        tmp = out.with_suffix(".tmp")
        _run(["gcc", "-static", "-O2", "-Wall", "-o", str(tmp), str(src)])
        os.replace(tmp, out)
    return out


def fetch_all(series: str, cache: Path | None = None) -> Artifacts:
    """Everything one boot needs; downloads and builds only what the cache lacks."""
    cache = cache or default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    ensure_host_tools(cache)
    vmlinuz, modules, release = fetch_kernel(series, cache)
    busybox = _download("busybox-static", cache) / "bin" / "busybox"
    return Artifacts(vmlinuz, modules, release, busybox, build_helper(cache))
