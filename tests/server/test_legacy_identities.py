"""Registrations stored by a version that wrote PSK principals ambiguously (the identity's
UTF-8 with invalid bytes as ``\\xNN``), loaded by this one from a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from aiolwm2m.security.credentials import IdentityKind, PeerIdentity
from aiolwm2m.server import LwM2MServer, ServerConfig
from aiolwm2m.store.records import Registration, SecurityInfo, registration_row
from aiolwm2m.store.sqlite import SQLiteStores

KEY = bytes(range(16))
CREDENTIALS = {"byte-dev": b"\xff", "text-dev": b"\\xff", "utf-dev": "dé".encode(),
               "plain-dev": b"plain", "changed-dev": b"new-id"}
# What the earlier version stored for each endpoint: byte-dev and text-dev wrote the same.
LEGACY = {"byte-dev": "psk:\\xff", "text-dev": "psk:\\xff", "utf-dev": "psk:dé",
          "plain-dev": "psk:plain", "changed-dev": "psk:old\\x01", "nosec-dev": None}


def principal(identity: bytes) -> str:
    return PeerIdentity(IdentityKind.PSK, psk_identity=identity).key


async def write_legacy_database(data_dir: Path) -> Path:
    path = data_dir / "aiolwm2m.sqlite3"
    stores = await SQLiteStores.open(path)
    for endpoint, identity in CREDENTIALS.items():
        await stores.security.put(SecurityInfo(endpoint, psk_identity=identity, psk_key=KEY))
    await stores.close()
    with sqlite3.connect(path) as db:
        for n, (endpoint, stored) in enumerate(LEGACY.items()):
            reg = Registration(f"id-{n}", endpoint, ("::1", 5000 + n), 86400,
                               transport="dtls" if stored else "udp", identity=stored,
                               registered_at=1e12, updated_at=1e12)
            row = list(registration_row(reg))[:18]  # the earlier row had no format mark
            db.execute("INSERT INTO registrations VALUES (?,?,?)",
                       (reg.id, endpoint, json.dumps(row)))
    return path


def stored_rows(path: Path) -> dict[str, list[object]]:
    with sqlite3.connect(path) as db:
        return {ep: json.loads(data)
                for ep, data in db.execute("SELECT endpoint, data FROM registrations")}


async def test_legacy_psk_principals_are_settled_or_dropped(tmp_path: Path) -> None:
    path = await write_legacy_database(tmp_path)
    for _ in range(2):  # once from the legacy rows, once from what the first start wrote
        server = LwM2MServer(ServerConfig(host="::1", port=0, data_dir=tmp_path,
                                          run_timers=False))
        await server.start()
        try:
            identities = {ep: r.identity for ep, r in server.registrations.items()}
        finally:
            await server.stop()
        # Each is now the principal its DTLS session reports; the two that collided no
        # longer do. Without a backslash the text named one identity; with one, the
        # endpoint's credentials decided; changed-dev's credentials no longer match what
        # was stored, so nobody can be trusted with it: dropped (its client registers again).
        assert identities == {
            "byte-dev": principal(b"\xff"), "text-dev": principal(b"\\xff"),
            "utf-dev": principal("dé".encode()), "plain-dev": "psk:plain",
            "nosec-dev": None}
        assert identities["byte-dev"] != identities["text-dev"]
    rows = stored_rows(path)
    assert "changed-dev" not in rows
    assert rows["text-dev"][10] == "psk:\\\\xff" and len(rows["text-dev"]) == 19
