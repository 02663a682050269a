"""Which event loops the tests run on.

The product runs on uvloop when it is installed (``aiolwm2m server``/``client`` default to
it) and on plain asyncio otherwise, and the two differ where it matters to transports:
transport classes, accept-error handling, buffered protocols. So every async test under the
directories that open sockets runs on both loops (ids ``[asyncio]`` and ``[uvloop]``); the
rest run on asyncio only. Commands started as subprocesses get the test's loop through
``AIOLWM2M_EVENT_LOOP``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

# Real redis-server processes (session-scoped: started once, shared by tests/store and
# tests/cluster).
from tests.redis_servers import private_redis, redis_cluster, redis_standalone  # noqa: F401

try:
    import uvloop
except ImportError:  # pragma: no cover - the test extra installs it
    uvloop = None

LoopFactory = Callable[[], asyncio.AbstractEventLoop]

_ROOT = Path(__file__).parent
#: Test directories (and files) whose async tests run on every loop.
BOTH_LOOPS = tuple(_ROOT / name for name in (
    "transport", "server", "interop", "security", "cli", "client", "hostile",
    "simulator/test_simulate_cli.py", "pubsub", "rd", "firmware", "nidd",
    "http2", "cluster", "web/test_serve.py", "gateway"))
#: ... except these: ``aiolwm2m coap`` runs on asyncio whatever the test's loop is.
ONE_LOOP = (_ROOT / "cli" / "test_coap_cli.py",)

ASYNCIO_ONLY: dict[str, LoopFactory] = {"asyncio": asyncio.new_event_loop}
EVERY_LOOP: dict[str, LoopFactory] = dict(ASYNCIO_ONLY)
if uvloop is not None:
    EVERY_LOOP["uvloop"] = uvloop.new_event_loop


def _on_every_loop(path: Path) -> bool:
    if path in ONE_LOOP:
        return False
    return any(path == p or p in path.parents for p in BOTH_LOOPS)


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item
                                  ) -> Mapping[str, LoopFactory] | None:
    return EVERY_LOOP if _on_every_loop(Path(str(item.path))) else ASYNCIO_ONLY


def _factory_name(request: pytest.FixtureRequest) -> str | None:
    """The name of the loop factory this test runs on (None: not an async test)."""
    callspec = getattr(request.node, "callspec", None)
    # pytest-asyncio parametrises async tests over the hook's factories under this name.
    factory = callspec.params.get("_asyncio_loop_factory") if callspec is not None else None
    for name, candidate in EVERY_LOOP.items():
        if factory is candidate:
            return name
    return None


@pytest.fixture(autouse=True)
def event_loop_name(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The loop this test runs on; commands an async test starts run on the same one (a
    sync test's commands get the product's default, "auto")."""
    name = _factory_name(request)
    if name is None:
        monkeypatch.delenv("AIOLWM2M_EVENT_LOOP", raising=False)
        return "auto"
    monkeypatch.setenv("AIOLWM2M_EVENT_LOOP", name)
    return name
