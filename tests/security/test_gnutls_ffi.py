"""The hand-written ABI declarations against the installed GnuTLS headers and library."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from aiolwm2m.security import gnutls_ffi
from aiolwm2m.security.gnutls_ffi import datum, ffi, gnutls_bytes, lib, take_datum

HEADERS = Path("/usr/include/gnutls/gnutls.h")
CONSTANTS = sorted(name for name in dir(gnutls_ffi)
                   if name.startswith("GNUTLS_") and isinstance(getattr(gnutls_ffi, name), int))


@pytest.mark.skipif(shutil.which("cc") is None or not HEADERS.exists(),
                    reason="needs a C compiler and libgnutls28-dev to read the real values")
def test_constants_and_layouts_match_the_headers(tmp_path: Path) -> None:
    lines = ["#include <stdio.h>", "#include <stddef.h>", "#include <gnutls/gnutls.h>",
             "#include <gnutls/dtls.h>", "#include <gnutls/x509.h>",
             "#include <gnutls/abstract.h>", "int main(void) {"]
    lines += [f'printf("{n} %lld\\n", (long long)({n}));' for n in CONSTANTS]
    for struct, fields in (("gnutls_datum_t", ("data", "size")),
                           ("gnutls_dtls_prestate_st",
                            ("record_seq", "hsk_read_seq", "hsk_write_seq")),
                           ("gnutls_typed_vdata_st", ("type", "data", "size"))):
        lines.append(f'printf("sizeof:{struct} %zu\\n", sizeof({struct}));')
        lines += [f'printf("offsetof:{struct}.{f} %zu\\n", offsetof({struct}, {f}));'
                  for f in fields]
    lines.append("return 0; }")
    (tmp_path / "c.c").write_text("\n".join(lines))
    subprocess.run(["cc", "c.c", "-o", "c"], cwd=tmp_path, check=True, timeout=60)
    out = subprocess.run([str(tmp_path / "c")], check=True, capture_output=True, text=True,
                         timeout=10).stdout
    actual = dict(line.rsplit(" ", 1) for line in out.splitlines())
    for name in CONSTANTS:
        assert getattr(gnutls_ffi, name) == int(actual[name]), name
    for key, value in actual.items():
        if key.startswith("sizeof:"):
            assert ffi.sizeof(key[7:]) == int(value), key
        elif key.startswith("offsetof:"):
            struct, field = key[9:].split(".")
            assert ffi.offsetof(struct, field) == int(value), key


def test_library_loads_and_reports_its_version() -> None:
    version = gnutls_ffi.gnutls_version()
    major, minor = (int(x) for x in version.split(".")[:2])
    assert (major, minor) >= (3, 6)


def test_every_declared_symbol_is_resolved_up_front() -> None:
    # A lazy cffi resolution takes a lock that a garbage-collected session's __del__
    # (gnutls_deinit) would deadlock on; lib() resolves everything at load time.
    loaded = lib()
    functions = [n for n in dir(loaded) if n not in ("gnutls_malloc", "gnutls_free")]
    assert functions
    assert all(n in loaded.__dict__ for n in functions)


def test_gnutls_allocated_memory_round_trips_through_take_datum() -> None:
    d = ffi.new("gnutls_datum_t *")
    d.data = ffi.cast("unsigned char *", gnutls_bytes(b"abc"))
    d.size = 3
    assert take_datum(d) == b"abc"
    assert d.data == ffi.NULL
    d2, _buf = datum(b"\x00\x01")
    assert ffi.buffer(d2.data, d2.size)[:] == b"\x00\x01"


def test_missing_library_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gnutls_ffi, "_lib", None)
    monkeypatch.setattr(gnutls_ffi, "LIBRARY_NAME", "libgnutls-does-not-exist.so.99")
    with pytest.raises(gnutls_ffi.GnuTLSUnavailable, match="libgnutls-does-not-exist"):
        gnutls_ffi.lib()
