"""Builds and runs the C load generator, and starts benchmark targets in child processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

BENCH = Path(__file__).resolve().parent
BUILD = BENCH / "build"


def build_loadgen(name: str = "coap_loadgen") -> Path:
    """Compile ``bench/<name>.c`` (once; again when the source changes)."""
    exe = BUILD / name
    src = BENCH / f"{name}.c"
    if exe.exists() and exe.stat().st_mtime >= src.stat().st_mtime:
        return exe
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        sys.exit("bench: a C compiler (gcc) is needed to build the load generator")
    BUILD.mkdir(exist_ok=True)
    subprocess.run([cc, "-O2", "-o", str(exe), str(src)], check=True)
    return exe


def pinned(cmd: list[str], core: int | None) -> list[str]:
    if core is None or shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return cmd
    return ["taskset", "-c", str(core), *cmd]


@dataclass
class Target:
    proc: subprocess.Popen[str]
    port: int
    #: What the target said after its port on the ``ready`` line.
    detail: str = ""

    def rss_kib(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_target(args: list[str], core: int | None = 0, stderr: IO[bytes] | None = None
                 ) -> Target:
    """Start ``python args...`` and wait for its ``ready PORT`` line."""
    proc = subprocess.Popen(pinned([sys.executable, *args], core), stdout=subprocess.PIPE,
                            stderr=stderr, text=True, cwd=BENCH.parent)
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("ready"):
            _, port, *detail = line.split()
            return Target(proc, int(port), " ".join(detail))
        if not line and proc.poll() is not None:
            break
    proc.kill()
    sys.exit(f"bench: target {args} did not start")


@dataclass
class LoadResult:
    requests: int
    seconds: float
    rps: float
    lost: int
    p50_us: int
    p99_us: int


def run_load(port: int, seconds: float, conns: int, inflight: int, path: str,
             core: int | None = 1, warmup: float = 1.0) -> LoadResult:
    exe = build_loadgen()
    out = subprocess.run(pinned([str(exe), "127.0.0.1", str(port), str(seconds), str(conns),
                                 str(inflight), path, str(warmup)], core),
                         capture_output=True, text=True, check=True).stdout
    fields = dict(item.split("=") for item in out.split())
    return LoadResult(int(fields["requests"]), float(fields["seconds"]), float(fields["rps"]),
                      int(fields["lost"]), int(fields["p50_us"]), int(fields["p99_us"]))


def run_tcp_load(port: int, seconds: float, conns: int, inflight: int, path: str,
                 core: int | None = 1, warmup: float = 1.0) -> LoadResult:
    """Closed-loop CoAP-over-TCP GETs from ``bench/coap_tcp_loadgen.c`` (its ``get`` mode)."""
    exe = build_loadgen("coap_tcp_loadgen")
    out = subprocess.run(pinned([str(exe), "get", "127.0.0.1", str(port), str(seconds),
                                 str(conns), str(inflight), path, str(warmup)], core),
                         capture_output=True, text=True, check=True).stdout
    fields = dict(item.split("=") for item in out.split())
    return LoadResult(int(fields["requests"]), float(fields["seconds"]), float(fields["rps"]),
                      int(fields["lost"]), int(fields["p50_us"]), int(fields["p99_us"]))


def open_idle_tcp(port: int, count: int, core: int | None = 1) -> subprocess.Popen[str]:
    """Hold ``count`` idle CoAP-over-TCP connections (each past its CSM exchange) open
    until the returned process's stdin is closed."""
    exe = build_loadgen("coap_tcp_loadgen")
    proc = subprocess.Popen(pinned([str(exe), "idle", "127.0.0.1", str(port), str(count)], core),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("ready"):
        proc.kill()
        sys.exit(f"bench: could not open {count} idle connections")
    return proc
