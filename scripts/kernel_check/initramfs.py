"""Build the VM's initramfs: a gzipped newc cpio written from Python.

In: ``fetch.Artifacts`` (busybox, helper, kernel modules) and one translated
trace (``Script.render()``). Out: the archive bytes, byte-identical for the
same inputs (fixed mtimes, uids and inode numbers, sorted module list).

Contents: /init (init.sh), /bin/busybox, /bin/helper, /dev/console,
/kc/modules/*.ko with /kc/modules.txt (insmod order), /kc/steps.sh.
"""

from __future__ import annotations

import gzip
import lzma
import re
from pathlib import Path

from scripts.kernel_check.fetch import HERE, Artifacts

#: virtio disks: ext4 on /dev/vda, swap on /dev/vdb (memcg, cgroup2, tmpfs, swap and ext4 are built in)
WANTED_MODULES = ("virtio_blk", "virtio_pci")

_DIR, _FILE, _CHR = 0o040755, 0o100755, 0o020600


def _entry(name: str, mode: int, data: bytes, ino: int, rdev: tuple[int, int] = (0, 0)) -> bytes:
    # newc header: 13 fields of 8 hex digits after the magic, then the name, each 4-aligned
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0]
    head = b"070701" + b"".join(f"{v:08x}".encode() for v in fields) + name.encode() + b"\0"
    head += b"\0" * (-len(head) % 4)
    return head + data + b"\0" * (-len(data) % 4)


def cpio(files: dict[str, bytes], dirs: list[str], devices: dict[str, tuple[int, int]]) -> bytes:
    """A newc archive of directories, regular files and character devices."""
    parts, ino = [], 1
    for d in sorted(dirs):
        parts.append(_entry(d, _DIR, b"", ino))
        ino += 1
    for name, (major, minor) in sorted(devices.items()):
        parts.append(_entry(name, _CHR, b"", ino, (major, minor)))
        ino += 1
    for name, data in sorted(files.items()):
        parts.append(_entry(name, _FILE, data, ino))
        ino += 1
    parts.append(_entry("TRAILER!!!", 0, b"", 0))
    return b"".join(parts)


def module_bytes(ko: Path) -> bytes:
    """A module file's contents, decompressed if it is a .ko.xz (6.12 packages compress them)."""
    data = ko.read_bytes()
    return lzma.decompress(data) if ko.name.endswith(".xz") else data


def module_name(ko: Path) -> str:
    """virtio_blk.ko(.xz) -> virtio_blk."""
    return ko.name.split(".ko")[0]


def module_depends(ko: Path) -> list[str]:
    """Names in the ``depends=`` field of a module's .modinfo section."""
    match = re.search(rb"\0depends=([^\0]*)\0", module_bytes(ko))
    return [d for d in (match.group(1).decode().split(",") if match else []) if d]


def _builtin(modules_dir: Path) -> set[str]:
    listing = modules_dir / "modules.builtin"
    lines = listing.read_text().split() if listing.exists() else []
    return {module_name(Path(line)) for line in lines}


def module_order(modules_dir: Path, wanted: tuple[str, ...] = WANTED_MODULES) -> list[Path]:
    """The wanted modules and their dependencies, dependencies first (built-in ones skipped)."""
    index = {module_name(p): p for p in sorted(modules_dir.rglob("*.ko*"))}
    builtin = _builtin(modules_dir)
    order: list[Path] = []

    def visit(name: str) -> None:
        if name in builtin:
            return
        if name not in index:
            raise RuntimeError(f"{modules_dir}: module {name}.ko not found (and not built in)")
        if index[name] in order:
            return
        for dep in module_depends(index[name]):
            visit(dep)
        order.append(index[name])

    for name in wanted:
        visit(name)
    return order


def build(art: Artifacts, steps_sh: str) -> bytes:
    """The gzipped initramfs for one run of ``steps_sh``."""
    mods = module_order(art.modules)
    files = {
        "init": (HERE / "init.sh").read_bytes(),
        "bin/busybox": art.busybox.read_bytes(),
        "bin/helper": art.helper.read_bytes(),
        "kc/modules.txt": "".join(f"{module_name(m)}.ko\n" for m in mods).encode(),
        "kc/steps.sh": steps_sh.encode(),
    }
    files.update({f"kc/modules/{module_name(m)}.ko": module_bytes(m) for m in mods})
    dirs = ["bin", "dev", "proc", "sys", "run", "mnt", "kc", "kc/modules", "tmp"]
    archive = cpio(files, dirs, {"dev/console": (5, 1)})
    return gzip.compress(archive, compresslevel=6, mtime=0)
