"""``aiolwm2m cluster-demo`` starts Redis, server nodes and nginx, its simulated devices
register through nginx and spread over the nodes, the REST API answers through nginx, and
Ctrl-C (SIGINT) stops every process it started."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.redis_servers import require_redis

from .test_nginx_failover import require_nginx

TOKEN = "demo-token"


def test_cluster_demo_serves_and_stops(tmp_path: Path) -> None:
    require_redis()
    require_nginx()
    directory = tmp_path / "demo"
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiolwm2m", "cluster-demo", "--nodes", "2",
         "--redis-primaries", "1", "--devices", "6", "--coap-port", "0", "--http-port", "0",
         "--dir", str(directory), "--api-token", TOKEN],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
            if line.startswith("cluster-demo: ready"):
                break
        text = "".join(lines)
        found = re.search(r"REST and web UI -> (http://127\.0\.0\.1:\d+)/ui/", text)
        assert found, text
        assert (directory / "nginx" / "nginx.conf").read_text().count("hash $remote_addr") == 1
        with httpx.Client(base_url=found.group(1), timeout=30,
                          headers={"Authorization": f"Bearer {TOKEN}"}) as api:
            deadline = time.monotonic() + 30
            while True:
                view = api.get("/api/cluster").json()
                if len(view["nodes"]) == 2 and view["totals"]["registrations"] == 6:
                    break
                assert time.monotonic() < deadline, view
                time.sleep(0.3)
            listed = api.get("/api/registrations").json()
            assert sorted(r["endpoint"] for r in listed["items"]) == [
                f"demo-{i:06d}" for i in range(6)]
            read = api.get("/api/clients/demo-000003/read", params={"path": "/3/0/2"})
            assert read.status_code == 200, read.text
        pids = [int((directory / "nginx" / "nginx.pid").read_text())]
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        assert "cluster-demo: stopped" in out
        for pid in pids:  # nginx is gone (the nodes and Redis are its siblings)
            assert not Path(f"/proc/{pid}").exists() or _zombie(pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def test_cluster_demo_refuses_bad_counts() -> None:
    done = subprocess.run([sys.executable, "-m", "aiolwm2m", "cluster-demo", "--nodes", "0"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ})
    assert done.returncode == 2 and "at least 1" in done.stderr
