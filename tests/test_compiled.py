"""The compiled core is used only when it was built from exactly the current sources, and
the plain-Python modules keep working without it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from aiolwm2m import compiled

ROOT = Path(__file__).resolve().parent.parent


def write_build(tmp_path: Path, *, sources: dict[str, str] | None = None,
                abi: str | None = None) -> Path:
    """A fake build: one empty file per module and a manifest describing them."""
    files = {}
    for module in compiled.MODULES:
        relative = module.replace(".", "/") + ".so"
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"")
        files[module] = relative
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({
        "abi": abi or compiled.abi(),
        "sources": sources or {m: compiled.digest(compiled.source_of(m))
                               for m in compiled.MODULES},
        "files": files}))
    return manifest


def test_a_build_of_the_current_sources_is_fresh(tmp_path: Path) -> None:
    files = compiled.fresh_files(write_build(tmp_path))
    assert files is not None and set(files) == set(compiled.MODULES)
    assert all(f.is_file() for f in files.values())


def test_one_edited_source_makes_the_whole_build_stale(tmp_path: Path) -> None:
    sources = {m: compiled.digest(compiled.source_of(m)) for m in compiled.MODULES}
    sources[compiled.MODULES[-1]] = "0" * 64
    assert compiled.fresh_files(write_build(tmp_path, sources=sources)) is None


def test_a_build_for_another_python_or_module_list_is_not_used(tmp_path: Path) -> None:
    assert compiled.fresh_files(write_build(tmp_path, abi="cpython-399-linux-True")) is None
    sources = {m: compiled.digest(compiled.source_of(m)) for m in compiled.MODULES[1:]}
    assert compiled.fresh_files(write_build(tmp_path, sources=sources)) is None


def test_a_missing_or_broken_manifest_means_plain_python(tmp_path: Path) -> None:
    assert compiled.fresh_files(tmp_path / "manifest.json") is None
    (tmp_path / "manifest.json").write_text("{not json")
    assert compiled.fresh_files(tmp_path / "manifest.json") is None
    manifest = write_build(tmp_path)
    (tmp_path / "aiolwm2m/coap/codec.so").unlink()
    assert compiled.fresh_files(manifest) is None


def run_python(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != compiled.PURE_ENV}
    environ.update(env)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


PROBE = ("import aiolwm2m.server, aiolwm2m.compiled as c, aiolwm2m.coap.codec as m; "
         "print(c.in_use(), m.__file__.endswith('.py'))")


def test_the_request_path_runs_compiled_exactly_when_a_fresh_build_exists() -> None:
    fresh = compiled.fresh_files() is not None
    assert run_python(PROBE) == f"{fresh} {not fresh}"


def test_the_pure_python_switch_loads_the_sources() -> None:
    assert run_python(PROBE, **{compiled.PURE_ENV: "1"}) == "False True"


def test_the_registration_tests_pass_on_the_plain_python_core() -> None:
    """The suite runs on whichever core is built; this runs the registration interface's
    own tests once more on the sources, so neither core goes untested."""
    environ = {**os.environ, compiled.PURE_ENV: "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/server/test_registration.py", "tests/coap/test_messaging.py"],
        cwd=ROOT, env=environ, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert " passed" in proc.stdout
