#!/usr/bin/env bash
# Idempotent set-up on Debian 12 (run as root or with sudo available): installs the Debian
# packages the chosen profile needs when they are missing, then builds .venv with the project.
#   scripts/setup.sh run    what `aiolwm2m` needs to serve
#   scripts/setup.sh test   everything the test suite drives (libcoap peers, ...)
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-run}"

debs=()
case "$profile" in
  run) debs+=(libgnutls30) ;;
  # libcoap's command-line peers for the interop tests, GnuTLS headers (the DTLS/TLS engine
  # binds the library at run time; the headers document it), OpenSSL's CLI for test
  # certificates, Chromium for the browser test of the web UI, Redis (redis-server,
  # redis-cli) for the Redis and Redis Cluster stores' tests, and nginx with its stream
  # module, the UDP/TCP load balancer in front of several nodes (tests/cluster, cluster-demo).
  test) debs+=(libgnutls30 libcoap3-bin libgnutls28-dev openssl chromium nghttp2-client
               redis-server redis-tools nginx libnginx-mod-stream) ;;
  *) echo "setup.sh: unknown profile '$profile' (run|test)" >&2; exit 2 ;;
esac

python_bin="${PYTHON:-}"
if [ -z "$python_bin" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python_bin="$candidate"; break; fi
  done
fi
[ -n "$python_bin" ] || { debs+=(python3 python3-venv); python_bin=python3; }
if command -v "$python_bin" >/dev/null 2>&1 && ! "$python_bin" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  debs+=(python3-venv)
fi

# A C compiler and Python's headers build the compiled core (aiolwm2m/compiled.py); without
# them everything still runs, as plain Python.
command -v cc >/dev/null 2>&1 || debs+=(gcc libc6-dev)
if command -v "$python_bin" >/dev/null 2>&1 && ! "$python_bin" -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null; then
  debs+=(python3-dev)
fi

missing=()
for pkg in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $("$python_bin" --version)"
  "$python_bin" -m venv .venv
fi
stamp=.venv/.aiolwm2m-installed
extras="fast"
[ "$profile" = test ] && extras="fast,test"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || ! grep -qx "$extras" "$stamp"; then
  echo "setup: installing aiolwm2m[$extras] into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[$extras]"
  echo "$extras" > "$stamp"
fi
# The coverage-guided fuzzer (scripts/fuzz_atheris.py) ships wheels for common platforms
# only; where it does not install, its test is skipped and the hypothesis fuzzers still run.
if [ "$profile" = test ] && ! .venv/bin/python -c 'import atheris' >/dev/null 2>&1; then
  .venv/bin/python -m pip install -q --only-binary=:all: atheris >/dev/null 2>&1 \
    || echo "setup: atheris is not available here; its fuzz run is skipped"
fi
# Compiles the request path with mypyc when its sources changed since the last build (a hash
# check, instant otherwise); a failed build leaves the plain-Python modules in use.
.venv/bin/python -m aiolwm2m.compiled_build || echo "setup: running the plain-Python core"
