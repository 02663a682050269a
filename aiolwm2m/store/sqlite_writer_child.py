"""The SQLite writer process: ``python -m aiolwm2m.store.sqlite_writer_child DB SYNC``.

It reads batches of writes from stdin, applies every batch that has arrived in one
transaction (group commit), and answers each batch's id on stdout once COMMIT returned.
Running in a process of its own, SQLite and the JSON encoding of rows use a second core
without taking the event loop's GIL. See :mod:`aiolwm2m.store.sqlite_writer` for the framing.

On end of input (the server stopped or died) it commits what it has and exits.
"""

from __future__ import annotations

import json
import marshal
import os
import select
import sqlite3
import struct
import sys
from typing import Any

_LEN = struct.Struct(">I")


def read_exact(fd: int, n: int) -> bytes | None:
    chunks = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> Any:
    head = read_exact(fd, 4)
    if head is None:
        return None
    body = read_exact(fd, _LEN.unpack(head)[0])
    if body is None:
        return None
    return marshal.loads(body)


def write_frame(fd: int, obj: Any) -> None:
    body = marshal.dumps(obj)
    data = _LEN.pack(len(body)) + body
    while data:
        data = data[os.write(fd, data):]


def _bytes_as_hex(value: object) -> object:
    # JSON has no bytes (an Opaque value): they travel as {"hex": "..."}, which SQLite's
    # own json_object('hex', hex(blob)) writes the same way.
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_DUMPS = json.JSONEncoder(separators=(",", ":"), default=_bytes_as_hex).encode


def apply(conn: sqlite3.Connection, statements: list[Any]) -> int:
    """Run a batch's statements; consecutive ones with the same SQL are run together. A key
    ``("json-last", SQL)`` asks for the last parameter to be encoded as JSON here (bytes
    as ``{"hex": "..."}``)."""
    run_key: Any = None
    run: list[Any] = []
    encode = False

    def flush() -> None:
        if run:
            conn.executemany(run_key[1] if encode else run_key, run)

    for key, params in statements:
        if key != run_key:
            flush()
            run_key, run = key, []
            encode = type(key) is tuple
        run.append((*params[:-1], _DUMPS(params[-1])) if encode else params)
    flush()
    return len(statements)


def main(path: str, synchronous: str) -> int:
    fd_in, fd_out = sys.stdin.fileno(), sys.stdout.fileno()
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA busy_timeout=5000")
        schema = read_frame(fd_in)
        for stmt in schema or ():
            conn.execute(stmt)
    except Exception as e:
        write_frame(fd_out, ("error", f"{type(e).__name__}: {e}"))
        return 1
    write_frame(fd_out, ("ready", None))
    eof = False
    while not eof:
        first = read_frame(fd_in)
        if first is None:
            return 0
        batches = [first]
        # Everything already waiting joins this transaction.
        while select.select([fd_in], [], [], 0)[0]:
            frame = read_frame(fd_in)
            if frame is None:
                eof = True
                break
            batches.append(frame)
        error = None
        try:
            conn.execute("BEGIN")
            for _, statements in batches:
                apply(conn, statements)
            conn.execute("COMMIT")
        except Exception as e:
            error = f"{type(e).__name__}: {e}"
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        write_frame(fd_out, ("done", ([batch_id for batch_id, _ in batches], error)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
