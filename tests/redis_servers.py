"""Real ``redis-server`` processes for the tests: one standalone Redis and one 3-primary Redis
Cluster per test session (shared by every test, each in a namespace of its own), and private
ones for tests that kill or stop their Redis.

Debian's ``redis-server`` package provides them (``scripts/setup.sh test`` installs it). The
tests are not skipped in CI: without the binary they fail there, and are skipped only on a
developer's machine that lacks it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")


def require_redis() -> str:
    if REDIS_SERVER is None or REDIS_CLI is None:
        message = "redis-server / redis-cli not found (scripts/setup.sh test installs them)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return REDIS_SERVER


def _die_with_the_tests() -> None:
    """In the child before exec: SIGTERM when the test process dies (even SIGKILLed), so
    no redis-server outlives an interrupted run."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def command(port: int, *args: str, timeout: float = 5.0) -> str:
    """One command through redis-cli (text reply)."""
    assert REDIS_CLI is not None
    done = subprocess.run([REDIS_CLI, "-p", str(port), *args], capture_output=True,
                          text=True, timeout=timeout, check=False)
    return done.stdout.strip()


@dataclass
class RedisProcess:
    """One redis-server on 127.0.0.1:``port``, its data (AOF) in ``directory``."""

    directory: Path
    port: int = field(default_factory=free_port)
    cluster: bool = False
    #: ``appendfsync always``: what "nothing acknowledged is lost" requires.
    fsync: str = "always"
    #: The Cluster bus port (by default Redis takes port + 10000, which may be taken or
    #: past 65535).
    bus_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        server = require_redis()
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [server, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.directory), "--save", "", "--appendonly", "yes",
                "--appendfsync", self.fsync, "--daemonize", "no",
                "--logfile", str(self.directory / "redis.log")]
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                     "--cluster-node-timeout", "2000", "--cluster-port", str(self.bus_port)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL,
                                     preexec_fn=_die_with_the_tests)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server on port {self.port} exited: "
                                   f"{self.log_tail()}")
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                if command(self.port, "PING", timeout=2) == "PONG":
                    return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not answer")

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.directory / "redis.log").read_text()[-500:]
        return ""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final save; what survives is what the AOF holds."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def used_memory(self) -> int:
        info = command(self.port, "INFO", "memory")
        return int(next(line.split(":", 1)[1] for line in info.splitlines()
                        if line.startswith("used_memory:")))


@dataclass
class RedisDeployment:
    """A running Redis (or Cluster) and the store URLs that name it."""

    scheme: str
    processes: list[RedisProcess]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.processes[0].port}"

    def url(self, namespace: str | None = None) -> str:
        """A store URL in a namespace of its own (a new one unless given)."""
        ns = namespace or f"t{uuid.uuid4().hex[:12]}"
        return f"{self.scheme}://{self.address}?namespace={ns}"

    def stop(self) -> None:
        for p in self.processes:
            p.stop()


def start_standalone(directory: Path) -> RedisDeployment:
    process = RedisProcess(directory)
    process.start()
    return RedisDeployment("redis", [process])


def start_cluster(directory: Path, primaries: int = 3) -> RedisDeployment:
    processes = [RedisProcess(directory / f"node{i}", cluster=True) for i in range(primaries)]
    try:
        for p in processes:
            p.start()
        assert REDIS_CLI is not None
        created = subprocess.run(
            [REDIS_CLI, "--cluster", "create", *(f"127.0.0.1:{p.port}" for p in processes),
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=60, check=False)
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout[-500:]}"
                               f"{created.stderr[-500:]}")
        deadline = time.monotonic() + 30
        while not all("cluster_state:ok" in command(p.port, "CLUSTER", "INFO")
                      for p in processes):
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")
            time.sleep(0.1)
    except BaseException:
        for p in processes:
            p.stop()
        raise
    return RedisDeployment("redis+cluster", processes)


@pytest.fixture(scope="session")
def redis_standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisDeployment]:
    require_redis()
    deployment = start_standalone(tmp_path_factory.mktemp("redis"))
    yield deployment
    deployment.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisDeployment]:
    require_redis()
    deployment = start_cluster(tmp_path_factory.mktemp("redis-cluster"))
    yield deployment
    deployment.stop()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A standalone Redis of this test's own, which it may kill and restart."""
    require_redis()
    process = RedisProcess(tmp_path / "redis")
    process.start()
    yield process
    process.stop()
