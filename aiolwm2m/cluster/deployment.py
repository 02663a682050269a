"""Several nodes on one machine, as they are deployed: a Redis (standalone or a 3-primary
Redis Cluster), N ``aiolwm2m server --node-id`` processes, and Debian's nginx with its
stream module in front of them as the UDP (CoAP) and TCP (REST API) load balancer.

Used by ``aiolwm2m cluster-demo``, by the failover tests (which SIGKILL a node process) and
by ``bench/bench_cluster.py``. Everything listens on 127.0.0.1 and lives in one directory
(Redis' AOF files, nginx's configuration and logs, each node's data directory and log).

nginx hashes CoAP datagrams on the source address (``hash $remote_addr consistent``): a
device keeps talking to one node while that node lives; when it dies, nginx's passive
health check (``max_fails``) takes it out and the device's next datagram goes to the next
node on the ring, which takes the device over (:mod:`aiolwm2m.cluster.ownership`). The REST
API is spread round-robin: any node answers for any device.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiolwm2m.store.redis_keys import Keys

#: The module nginx loads for ``stream {}`` (Debian 12: package libnginx-mod-stream).
STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")


Check = Callable[[], bool]


class DeploymentError(Exception):
    """A part did not start (missing binary, port taken, process exited)."""


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free for ``kind`` on 127.0.0.1 (and, being picked at random by the kernel,
    very likely for the other kind too)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_coap_port() -> int:
    """A UDP port free on 127.0.0.1 and ::1 (nginx listens on both for devices)."""
    for _ in range(50):
        port = free_port(socket.SOCK_DGRAM)
        with contextlib.suppress(OSError), socket.socket(socket.AF_INET6,
                                                         socket.SOCK_DGRAM) as s:
            s.bind(("::1", port))
            return port
    raise DeploymentError("no UDP port free on both 127.0.0.1 and ::1")


def _which(name: str, package: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists()
                                  else None)
    if path is None:
        raise DeploymentError(f"{name} not found: install the Debian package {package} "
                              "(scripts/setup.sh test does)")
    return path


def _wait(check: Check, what: str, proc: subprocess.Popen[bytes] | None,
          log: Path | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise DeploymentError(f"{what} exited ({proc.returncode}): {_tail(log)}")
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            if check():
                return
        time.sleep(0.05)
    raise DeploymentError(f"{what} did not come up in {timeout:.0f} s: {_tail(log)}")


def _tail(log: Path | None) -> str:
    if log is None:
        return ""
    with contextlib.suppress(OSError):
        return log.read_text(errors="replace")[-800:]
    return ""


def _stop(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- Redis ----------------------------------------------------------------------------------

@dataclass
class RedisNode:
    directory: Path
    port: int = field(default_factory=free_port)
    bus_port: int = field(default_factory=free_port)
    cluster: bool = False
    proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, timeout: float = 5.0) -> str:
        done = subprocess.run([_which("redis-cli", "redis-tools"), "-p", str(self.port),
                               *args], capture_output=True, text=True, timeout=timeout,
                              check=False)
        return done.stdout.strip()

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        log = self.directory / "redis.log"
        # appendfsync always: a write is on disk before Redis answers it ("nothing
        # acknowledged is lost" holds even if Redis itself is killed).
        args = [_which("redis-server", "redis-server"), "--port", str(self.port),
                "--bind", "127.0.0.1", "--dir", str(self.directory), "--save", "",
                "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no",
                "--logfile", str(log)]
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                     "--cluster-node-timeout", "2000", "--cluster-port", str(self.bus_port)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(lambda: self.cli("PING", timeout=2) == "PONG", f"redis-server :{self.port}",
              self.proc, log, 15)

    def stop(self) -> None:
        _stop(self.proc)


@dataclass
class RedisSet:
    """A standalone Redis (``primaries`` = 1) or a Redis Cluster of ``primaries``."""

    directory: Path
    primaries: int = 3
    nodes: list[RedisNode] = field(default_factory=list)

    @property
    def url(self) -> str:
        scheme = "redis+cluster" if self.primaries > 1 else "redis"
        return f"{scheme}://127.0.0.1:{self.nodes[0].port}"

    def start(self) -> None:
        cluster = self.primaries > 1
        self.nodes = [RedisNode(self.directory / f"redis{i}", cluster=cluster)
                      for i in range(self.primaries)]
        try:
            for node in self.nodes:
                node.start()
            if cluster:
                self._create_cluster()
        except BaseException:
            self.stop()
            raise

    def _create_cluster(self) -> None:
        created = subprocess.run(
            [_which("redis-cli", "redis-tools"), "--cluster", "create",
             *(f"127.0.0.1:{n.port}" for n in self.nodes), "--cluster-replicas", "0",
             "--cluster-yes"], capture_output=True, text=True, timeout=60, check=False)
        if created.returncode != 0:
            raise DeploymentError(f"redis-cli --cluster create failed: "
                                  f"{(created.stdout + created.stderr)[-500:]}")
        _wait(lambda: all("cluster_state:ok" in n.cli("CLUSTER", "INFO") for n in self.nodes),
              "the Redis Cluster", None, None, 30)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


# -- nginx ----------------------------------------------------------------------------------

def nginx_config(directory: Path, coap_port: int, coap_backends: list[int],
                 http_port: int | None, http_backends: list[int]) -> str:
    """nginx.conf for the stream load balancer (its pid file and logs in ``directory``)."""
    udp_servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=30s;"
                            for p in coap_backends)
    text = f"""\
# aiolwm2m: nginx (stream module) in front of {len(coap_backends)} server nodes.
load_module {STREAM_MODULE};
worker_processes 1;
worker_rlimit_nofile 65536;
pid {directory / "nginx.pid"};
error_log {directory / "nginx-error.log"} warn;
events {{ worker_connections 32768; }}
stream {{
    # CoAP over UDP: one device stays on one node (hash of its source address); a node
    # that fails to answer is out for fail_timeout, its devices rehash to the next one.
    upstream lwm2m_coap {{
        hash $remote_addr consistent;
{udp_servers}
    }}
    server {{
        listen 127.0.0.1:{coap_port} udp;
        listen [::1]:{coap_port} udp;
        proxy_pass lwm2m_coap;
        # The node's requests to the device (reads, observations) come back through the
        # same session: keep it as long as a device may stay silent between Updates.
        proxy_timeout 1h;
        proxy_connect_timeout 2s;
    }}
"""
    if http_port is not None and http_backends:
        http_servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;"
                                 for p in http_backends)
        text += f"""\
    # The REST API and web UI over TCP: any node answers for any device.
    upstream lwm2m_http {{
{http_servers}
    }}
    server {{
        listen 127.0.0.1:{http_port};
        proxy_pass lwm2m_http;
        proxy_connect_timeout 1s;
        proxy_timeout 10m;
    }}
"""
    return text + "}\n"


@dataclass
class Nginx:
    directory: Path
    coap_port: int
    coap_backends: list[int]
    http_port: int | None = None
    http_backends: list[int] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = _which("nginx", "nginx")
        if not STREAM_MODULE.exists():
            raise DeploymentError(f"{STREAM_MODULE} not found: install the Debian package "
                                  "libnginx-mod-stream (scripts/setup.sh test does)")
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "nginx.conf"
        conf.write_text(nginx_config(self.directory, self.coap_port, self.coap_backends,
                                     self.http_port, self.http_backends))
        log = self.directory / "nginx-error.log"
        self.proc = subprocess.Popen(
            [binary, "-p", str(self.directory), "-c", str(conf), "-e", str(log),
             "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = self.http_port

        def listening() -> bool:
            if port is None:
                time.sleep(0.3)  # UDP: nothing to connect to; it is up once it stays up
                return True
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True

        _wait(listening, "nginx", self.proc, log, 15)
        if self.proc.poll() is not None:
            raise DeploymentError(f"nginx exited: {_tail(log)}")

    def stop(self) -> None:
        _stop(self.proc)


# -- server nodes ---------------------------------------------------------------------------

@dataclass
class NodeProcess:
    """One ``aiolwm2m server --node-id NAME`` process."""

    name: str
    store: str
    directory: Path
    token: str
    coap_port: int = field(default_factory=lambda: free_port(socket.SOCK_DGRAM))
    http_port: int = field(default_factory=free_port)
    node_ttl: float = 3.0
    extra: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log(self) -> Path:
        return self.directory / "server.log"

    def start(self, *, wait: bool = True) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "aiolwm2m", "server", "--store", self.store,
                "--node-id", self.name, "--coap-host", "127.0.0.1",
                "--coap-port", str(self.coap_port), "--no-dtls", "--no-tcp",
                "--no-bootstrap", "--no-rd", "--values-store", "off",
                "--http-host", "127.0.0.1", "--http-port", str(self.http_port),
                "--api-token", self.token, "--data-dir", str(self.directory / "data"),
                "--cluster-node-ttl", str(self.node_ttl), *self.extra]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 60.0) -> None:
        def health() -> bool:
            with socket.create_connection(("127.0.0.1", self.http_port), timeout=1) as s:
                s.sendall(b"GET /api/health HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer "
                          + self.token.encode() + b"\r\n\r\n")
                return s.recv(64).startswith(b"HTTP/1.1 200")

        _wait(health, f"node {self.name}", self.proc, self.log, timeout)

    def kill(self) -> None:
        """SIGKILL: no clean stop, its heartbeat and leases just stop being renewed."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        _stop(self.proc, 20)


# -- all of it ------------------------------------------------------------------------------

@dataclass
class Deployment:
    """Redis, ``nodes`` server nodes and nginx in front, in ``directory``."""

    directory: Path
    nodes: int = 3
    redis_primaries: int = 3
    token: str = "cluster-demo"
    #: The ports nginx listens on for devices (UDP) and for the REST API (TCP); 0 picks.
    coap_port: int = 0
    http_port: int = 0
    node_ttl: float = 3.0
    namespace: str = "lwm2m"
    node_flags: list[str] = field(default_factory=list)
    redis: RedisSet | None = None
    servers: list[NodeProcess] = field(default_factory=list)
    nginx: Nginx | None = None

    @property
    def store_url(self) -> str:
        assert self.redis is not None
        return f"{self.redis.url}?namespace={self.namespace}"

    @property
    def coap_uri(self) -> str:
        return f"coap://127.0.0.1:{self.coap_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            self.redis = RedisSet(self.directory, self.redis_primaries)
            self.redis.start()
            self.servers = [NodeProcess(f"node{i + 1}", self.store_url,
                                        self.directory / f"node{i + 1}", self.token,
                                        node_ttl=self.node_ttl, extra=list(self.node_flags))
                            for i in range(self.nodes)]
            for server in self.servers:
                server.start(wait=False)
            for server in self.servers:
                server.wait_ready()
            self.coap_port = self.coap_port or free_coap_port()
            self.http_port = self.http_port or free_port()
            self.nginx = Nginx(self.directory / "nginx", self.coap_port,
                               [s.coap_port for s in self.servers], self.http_port,
                               [s.http_port for s in self.servers])
            self.nginx.start()
        except BaseException:
            self.stop()
            raise

    def owner_of(self, endpoint: str) -> str | None:
        """The node whose lease holds ``endpoint`` (None: no lease)."""
        assert self.redis is not None
        key = Keys(self.namespace).lease(endpoint)
        value = self.redis.nodes[0].cli("-c", "GET", key)
        return value or None

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        for server in self.servers:
            server.stop()
        if self.redis is not None:
            self.redis.stop()
