"""The server's collector thresholds keep requests in flight out of full collections."""

from __future__ import annotations

import subprocess
import sys

# A burst of updates in miniature: fifty thousand long-lived records, and a window of a
# thousand requests, each a few containers, always in flight.
PROGRAM = """
import collections, gc, sys
from aiolwm2m.server.collector import tune_for_server
if sys.argv[1] == "tuned":
    tune_for_server()
full = 0
def count(phase, info):
    global full
    if phase == "stop" and info["generation"] == 2:
        full += 1
gc.callbacks.append(count)
records = [(f"ep-{i}", [i]) for i in range(50_000)]
window = collections.deque()
for i in range(200_000):
    request = {"token": [i], "options": [(11, b"rd")], "state": (i, [])}
    request["self"] = request  # a cycle, as a coroutine frame and its future often are
    window.append(request)
    if len(window) > 1000:
        window.popleft()
print(full)
"""


def full_collections(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True,
                         text=True, check=True)
    return int(out.stdout)


def test_requests_in_flight_do_not_trigger_full_collections() -> None:
    assert full_collections("default") >= 3
    assert full_collections("tuned") == 0
