"""Legitimate registrations per second and their p99 while the server is under attack, against
the same run with no attack.

    .venv/bin/python bench/bench_hostile.py [--endpoints 30000] [--attacks amplify,slowloris]
                                            [--rate 5000] [--loop uvloop]

For each scenario a fresh server (SQLite store, every 2.01 durable; UDP, DTLS and TCP on, as
``aiolwm2m server`` runs) starts in its own process. The attacker (bench/hostile_attacks.py)
starts, gets two seconds to build up its state on the server (half-open handshakes, held
connections, reassembly buffers), and keeps attacking while the C load generator registers
ENDPOINTS distinct devices and then updates each once. The first scenario, ``none``, is the
baseline. Reported per scenario: registrations/s and updates/s, their ratio to the baseline,
register p99, the server's RSS growth, and what the attacker sent and got back (the reply to
request byte ratio is the amplification factor a spoofing attacker would get).

The attackers run at a fixed rate (``--rate`` packets or connections per second, spread over
32 loopback source addresses) rather than flat out: on a two-core machine an unpaced flood
only measures how the kernel shares the cores, not what the server does with the traffic.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from loadgen import build_loadgen, start_target

ATTACKS = ["amplify", "garbage", "hijack", "block1", "bigreg", "slowloris", "dtls"]

#: Pace of each attack; several of them cost the attacker far more than a packet each.
RATES = {"bigreg": 2.0, "slowloris": 500.0, "dtls": 500.0}


@dataclass
class Outcome:
    reg_rate: float
    upd_rate: float
    reg_p99_ms: float
    failed: int
    rss_growth_mib: float
    rss_peak_mib: float
    log_bytes: int
    attack: str


def parse(line: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in line.split())


def scenario(attack: str, endpoints: int, rate: float, loop: str) -> Outcome:
    print(f"-- {attack}: server ({loop}) ...", flush=True)
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in the finally below)
    target = start_target(["bench/lwm2m_server_target.py", "sqlite", "--all-transports"]
                          + (["--uvloop"] if loop == "uvloop" else []), core=None, stderr=log)
    ports = dict(item.split("=") for item in target.detail.split() if "=" in item)
    attacker = None
    try:
        time.sleep(0.5)
        rss_start = target.rss_kib()
        peak = rss_start
        if attack != "none":
            attacker = subprocess.Popen(
                [sys.executable, "bench/hostile_attacks.py", attack, "--port", str(target.port),
                 "--tcp-port", ports["tcp"], "--dtls-port", ports["dtls"],
                 "--rate", str(RATES.get(attack, rate)), "--seconds", "600"],
                stdout=subprocess.PIPE, text=True)
            assert attacker.stdout is not None
            attacker.stdout.readline()  # ready
            for _ in range(4):
                time.sleep(0.5)
                peak = max(peak, target.rss_kib())
        exe = build_loadgen("rd_loadgen")
        load = subprocess.Popen([str(exe), "127.0.0.1", str(target.port), str(endpoints), "64",
                                 "1024"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        assert load.stdout is not None and load.stdin is not None
        reg = parse(load.stdout.readline())
        load.stdout.readline()  # "registered"
        peak = max(peak, target.rss_kib())
        load.stdin.write("go\n")
        load.stdin.flush()
        upd = parse(load.stdout.readline())
        load.wait()
        peak = max(peak, target.rss_kib())
        attack_line = ""
        if attacker is not None:
            attacker.send_signal(signal.SIGTERM)
            out, _ = attacker.communicate(timeout=30)
            attack_line = out.strip().splitlines()[-1] if out.strip() else "(no figures)"
        rss_end = target.rss_kib()
        log_bytes = log.seek(0, 2)
        outcome = Outcome(float(reg["rate"]), float(upd["rate"]), float(reg["p99_us"]) / 1000,
                          int(reg["failed"]) + int(upd["failed"]),
                          (rss_end - rss_start) / 1024, max(peak, rss_end) / 1024, log_bytes,
                          attack_line)
        print(f"   registrations {outcome.reg_rate:,.0f}/s (p99 {outcome.reg_p99_ms:.1f} ms), "
              f"updates {outcome.upd_rate:,.0f}/s, failed {outcome.failed}; server RSS "
              f"+{outcome.rss_growth_mib:.0f} MiB (peak {outcome.rss_peak_mib:.0f} MiB), "
              f"{outcome.log_bytes:,} bytes of server log", flush=True)
        if attack_line:
            print(f"   attacker: {attack_line}{amplification(attack_line)}", flush=True)
        return outcome
    finally:
        if attacker is not None and attacker.poll() is None:
            attacker.kill()
        target.stop()
        log.close()


def amplification(line: str) -> str:
    fields = parse(line)
    sent = int(fields.get("sent_bytes", "0"))
    if not sent:
        return ""
    return f" (reply/request bytes {int(fields.get('recv_bytes', '0')) / sent:.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoints", type=int, default=30000)
    ap.add_argument("--attacks", default=",".join(ATTACKS))
    ap.add_argument("--rate", type=float, default=5000.0,
                    help="datagrams per second of the packet attacks")
    ap.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    args = ap.parse_args()
    results = {"none": scenario("none", args.endpoints, args.rate, args.loop)}
    for attack in args.attacks.split(","):
        results[attack] = scenario(attack, args.endpoints, args.rate, args.loop)
    base = results["none"]
    print()
    print(f"{'attack':>10} {'reg/s':>8} {'ratio':>6} {'p99 ms':>7} {'upd/s':>8} {'ratio':>6} "
          f"{'failed':>6} {'RSS +MiB':>8} {'peak MiB':>8} {'log KiB':>7}")
    for name, r in results.items():
        print(f"{name:>10} {r.reg_rate:>8,.0f} {r.reg_rate / base.reg_rate:>6.2f} "
              f"{r.reg_p99_ms:>7.1f} {r.upd_rate:>8,.0f} {r.upd_rate / base.upd_rate:>6.2f} "
              f"{r.failed:>6} {r.rss_growth_mib:>8.0f} {r.rss_peak_mib:>8.0f} "
              f"{r.log_bytes / 1024:>7.0f}")
    print(f"(baseline: the same server with no attack, {args.endpoints:,} endpoints; target: "
          f"every ratio >= 0.5 with memory bounded)")


if __name__ == "__main__":
    main()
