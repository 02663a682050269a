"""Building the compiled core (see :mod:`aiolwm2m.compiled`):
``python -m aiolwm2m.compiled_build [build [--force] | clean | status]``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from .compiled import GROUP, MANIFEST, MODULES, OUTPUT_DIR, abi, digest, fresh_files, source_of

_SETUP = """
import sys
from setuptools import setup
from mypyc.build import mypycify
paths = sys.argv[1].split("\\n")
group, build_lib, build_temp = sys.argv[2:5]
setup(name=group, ext_modules=mypycify(paths, group_name=group, opt_level="3",
                                         target_dir=build_temp + "/c"),
      script_args=["-q", "build_ext", "--build-lib", build_lib, "--build-temp", build_temp])
"""


def build(*, force: bool = False) -> bool:
    """Compile :data:`MODULES` into :data:`OUTPUT_DIR`; False (and plain Python stays in
    use) if mypyc or a C compiler is missing or the build fails."""
    if not force and fresh_files() is not None:
        print("compiled core: up to date")
        return True
    try:
        import mypyc  # noqa: F401
    except ImportError:
        print("compiled core: mypyc is not installed; running as plain Python")
        return False
    if shutil.which(os.environ.get("CC", "cc")) is None:
        print("compiled core: no C compiler (cc); running as plain Python")
        return False
    sources = {m: digest(source_of(m)) for m in MODULES}
    started = time.monotonic()
    print(f"compiled core: compiling {len(MODULES)} modules with mypyc "
          "(type-checks the package first; about a minute)...", flush=True)
    with tempfile.TemporaryDirectory(prefix="aiolwm2m-mypyc-") as tmp:
        out = Path(tmp) / "lib"
        # A directory of its own: setuptools would otherwise read the project's
        # pyproject.toml, and the C files and objects stay out of the tree.
        proc = subprocess.run(
            [sys.executable, "-c", _SETUP, "\n".join(str(source_of(m)) for m in MODULES),
             GROUP, str(out), str(Path(tmp) / "temp")],
            cwd=tmp, capture_output=True, text=True)
        if proc.returncode != 0:
            print("compiled core: build failed; running as plain Python\n"
                  + (proc.stdout + proc.stderr)[-4000:])
            return False
        files: dict[str, str] = {}
        for so in out.rglob("*.so"):
            relative = so.relative_to(out)
            module = ".".join((*relative.parts[:-1], relative.name.split(".")[0]))
            files[module] = str(relative)
        missing = [m for m in MODULES if m not in files]
        if missing:
            print(f"compiled core: build produced no module for {missing}")
            return False
        if OUTPUT_DIR.exists():
            shutil.rmtree(OUTPUT_DIR)
        shutil.copytree(out, OUTPUT_DIR)
    # The manifest last: a build interrupted before this point is simply not used.
    MANIFEST.write_text(json.dumps({"abi": abi(), "sources": sources, "files": files},
                                   indent=1))
    print(f"compiled core: built in {time.monotonic() - started:.0f} s into {OUTPUT_DIR}")
    return True


def clean() -> None:
    if OUTPUT_DIR.exists():
        shutil.rmtree(OUTPUT_DIR)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else "build"
    if command == "build":
        return 0 if build(force="--force" in args) else 1
    if command == "clean":
        clean()
        return 0
    if command == "status":
        fresh = fresh_files() is not None
        print("compiled core: " + ("built and fresh" if fresh else "not built or stale"))
        return 0 if fresh else 1
    print("usage: python -m aiolwm2m.compiled_build [build [--force] | clean | status]",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
