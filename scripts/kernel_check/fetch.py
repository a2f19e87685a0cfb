"""Fetch and build everything the VM needs, idempotently, into a cache directory.

In: a kernel — a series ("6.1" = bookworm's cloud kernel, "6.12" = the bookworm
backport in bookworm-security), which means the build Debian ships today, or
an exact image package ("linux-image-6.12.117+deb12-cloud-amd64") — and the
cache directory.
Out: ``Artifacts`` — paths of the kernel image, its module tree, the
busybox-static binary and our static helper, and the exact build (package,
package version, ``uname -r``) — plus the host tools (qemu, mkfs.ext4, gcc)
installed with apt when missing.

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
    package: str = ""  #: the image package, e.g. linux-image-6.12.118+deb12-cloud-amd64
    version: str = ""  #: its Debian version, e.g. 6.12.118-1~deb12u1 (upstream stable 6.12.118)

    @property
    def upstream(self) -> str:
        """The upstream stable release the package is built from ("6.12.118", "6.1.192")."""
        return upstream_version(self.version) if self.version else ""

    @property
    def build(self) -> str:
        """The exact build, as every validation result names it: ``uname -r (package version)``."""
        return f"{self.release} ({self.version})" if self.version else self.release

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


def upstream_version(debian_version: str) -> str:
    """'6.12.118-1~deb12u1' -> '6.12.118'; '6.1.192-3' -> '6.1.192' (epoch and Debian revision dropped)."""
    v = debian_version.split(":", 1)[-1]
    return v.split("-", 1)[0].split("+", 1)[0].split("~", 1)[0]


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
    (tree / ".version").write_text(_run(["dpkg-deb", "-f", str(deb), "Version"]).strip() + "\n")
    (tree / ".complete").touch()
    return tree


def package_version(package: str, cache: Path) -> str:
    """The Debian version of the unpacked ``package`` (what was actually booted)."""
    stamp = cache / "pkgs" / package / ".version"
    if stamp.exists():
        return stamp.read_text().strip()
    # a tree unpacked before versions were kept: ask the .deb it came from
    deb = sorted((cache / "debs").glob(f"{package}_*.deb"))[-1]
    version = _run(["dpkg-deb", "-f", str(deb), "Version"]).strip()
    stamp.write_text(version + "\n")
    return version


def kernel_package(kernel: str, cache: Path) -> str:
    """The image package of ``kernel``: a series' current build, or an exact package as given."""
    if kernel in KERNEL_META:
        return _resolve(KERNEL_META[kernel], cache)
    if kernel.startswith("linux-image-") and kernel.endswith("-cloud-amd64"):
        return kernel
    raise ValueError(f"kernel {kernel!r}: a series ({', '.join(sorted(KERNEL_META))}) "
                     f"or a package such as linux-image-6.12.117+deb12-cloud-amd64")


def fetch_kernel(kernel: str, cache: Path) -> tuple[Path, Path, str, str, str]:
    """(vmlinuz, modules dir, release, package, package version) of a Debian cloud kernel.

    ``kernel`` is a series ("6.1", "6.12": the build its meta package depends on today)
    or an exact image package name.
    """
    package = kernel_package(kernel, cache)
    tree = _download(package, cache)
    images = sorted((tree / "boot").glob("vmlinuz-*"))
    if not images:
        raise RuntimeError(f"{tree}: no boot/vmlinuz-* in the kernel package")
    release = images[-1].name.removeprefix("vmlinuz-")
    return images[-1], tree / "lib" / "modules" / release, release, package, package_version(package, cache)


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


def fetch_all(kernel: str, cache: Path | None = None) -> Artifacts:
    """Everything one boot needs; downloads and builds only what the cache lacks."""
    cache = cache or default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    ensure_host_tools(cache)
    vmlinuz, modules, release, package, version = fetch_kernel(kernel, cache)
    busybox = _download("busybox-static", cache) / "bin" / "busybox"
    return Artifacts(vmlinuz, modules, release, busybox, build_helper(cache), package, version)
