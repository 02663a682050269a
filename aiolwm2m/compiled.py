"""The compiled core: the request path's modules built with mypyc, used only when fresh.

A Register crosses some 150 Python functions (decode, deduplicate, route, parse, index,
respond). Compiled to C by mypyc from the same type-annotated sources, that path costs 40%
fewer instructions and the server 15-20% less CPU, which is what lets one core keep up with
30,000 durable registrations per second. The sources stay the product: nothing here is
hand-written C, and without a C compiler everything runs as plain Python.

``python -m aiolwm2m.compiled_build`` (run by ``scripts/setup.sh``) compiles the modules
listed below into ``aiolwm2m/_compiled/`` with a manifest of their sources' hashes. When
``aiolwm2m`` is imported, an import hook serves those extension modules, but only if every
listed source still hashes as it did at build time, for this Python; an edited source
sends the whole group back to plain Python (the compiled modules call each other directly,
so they can only be used together). ``AIOLWM2M_PURE_PYTHON=1`` turns the hook off.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

#: What is compiled: the modules every request runs through, none that tests patch.
MODULES = (
    "aiolwm2m.coap.codec",
    "aiolwm2m.coap.generational_cache",
    "aiolwm2m.coap.message",
    "aiolwm2m.coap.messaging",
    "aiolwm2m.server.deadlines",
    "aiolwm2m.server.queue_mode",
    "aiolwm2m.server.registration_params",
    "aiolwm2m.server.registry",
    "aiolwm2m.server.server",
    "aiolwm2m.store.memory",
    "aiolwm2m.store.sqlite",
    "aiolwm2m.store.sqlite_writer",
    "aiolwm2m.transport.dispatch",
    "aiolwm2m.transport.udp",
)
GROUP = "aiolwm2m_core"
PACKAGE_DIR = Path(__file__).resolve().parent
OUTPUT_DIR = PACKAGE_DIR / "_compiled"
MANIFEST = OUTPUT_DIR / "manifest.json"
PURE_ENV = "AIOLWM2M_PURE_PYTHON"


def source_of(module: str) -> Path:
    return PACKAGE_DIR.parent.joinpath(*module.split(".")).with_suffix(".py")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def abi() -> str:
    return f"{sys.implementation.cache_tag}-{sys.platform}-{sys.maxsize > 2**32}"


def fresh_files(manifest_path: Path = MANIFEST) -> dict[str, Path] | None:
    """Module name -> extension file, if a build exists and matches the sources."""
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("abi") != abi() or sorted(manifest.get("sources", {})) != sorted(MODULES):
        return None
    base = manifest_path.parent
    files: dict[str, Path] = {}
    try:
        for module, built_from in manifest["sources"].items():
            if digest(source_of(module)) != built_from:
                return None
        for module, relative in manifest["files"].items():
            file = base / relative
            if not file.is_file():
                return None
            files[module] = file
    except (OSError, KeyError, TypeError):
        return None
    return files


class _CompiledFinder(importlib.abc.MetaPathFinder):
    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        file = self.files.get(fullname)
        if file is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(file))
        return importlib.util.spec_from_file_location(fullname, file, loader=loader)


def enable() -> bool:
    """Serve the compiled modules from now on, if they are fresh; True if they are."""
    if os.environ.get(PURE_ENV):
        return False
    if any(isinstance(f, _CompiledFinder) for f in sys.meta_path):
        return True
    if any(m in sys.modules for m in MODULES):
        return False  # some already run as Python; mixing would call stale code
    files = fresh_files()
    if files is None:
        return False
    sys.meta_path.insert(0, _CompiledFinder(files))
    return True


def in_use() -> bool:
    """Whether the request path runs compiled (for banners and benchmarks)."""
    module = sys.modules.get(MODULES[0])
    return module is not None and isinstance(
        getattr(module, "__loader__", None), importlib.machinery.ExtensionFileLoader)
