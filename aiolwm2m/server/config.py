"""Server configuration."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiolwm2m.coap.params import DEFAULT_PARAMETERS, TransmissionParameters
from aiolwm2m.security.credentials import RpkCredentials, X509Credentials


@dataclass
class ServerConfig:
    host: str = "::"
    port: int = 5683
    #: UDP port for CoAP over DTLS (coaps://); None leaves DTLS off. PSK clients are
    #: authenticated from the security store; RPK and X.509 need the server's own key or
    #: certificate below.
    coaps_port: int | None = None
    #: TCP ports for coap+tcp:// and coaps+tcp:// (RFC 8323); None leaves them off.
    tcp_port: int | None = None
    tls_port: int | None = None
    dtls_rpk: RpkCredentials | None = None
    dtls_x509: X509Credentials | None = None
    #: Where the SQLite database lives; ``store="memory"`` keeps nothing on disk.
    data_dir: Path = field(default_factory=lambda: Path("aiolwm2m-data"))
    store: str = "sqlite"
    #: ``FULL`` fsyncs every group commit; ``NORMAL`` survives a process crash but not a
    #: power cut, and is faster on slow disks.
    sqlite_synchronous: str = "FULL"
    lwm2m_versions: frozenset[str] = frozenset({"1.0", "1.1"})
    default_lifetime: int = 86400
    min_lifetime: int = 1
    #: How long a queue-mode client stays reachable after it last spoke (TS default:
    #: MAX_TRANSMIT_WAIT, 93 s).
    awake_time: float = 93.0
    #: How long a request for a sleeping client waits in the queue by default.
    queue_ttl: float = 86400.0
    #: How long finished queued requests stay retrievable by id.
    queue_result_retention: float = 3600.0
    transmission: TransmissionParameters = DEFAULT_PARAMETERS
    model_dirs: tuple[Path, ...] = ()
    #: Wall clock used for lifetimes and queue TTLs (persisted times must survive restarts).
    clock: Callable[[], float] = time.time
    #: Run the lifetime / queue timers as background tasks (tests drive them by hand).
    run_timers: bool = True

    @property
    def database(self) -> Path:
        return self.data_dir / "aiolwm2m.sqlite3"
