"""Run a fleet for a while and measure it: what ``aiolwm2m simulate`` and the benchmark do.

Phases: devices start at ``rate`` per second; once all are registered (or ``register_timeout``
passes) the steady-state window of ``duration`` seconds begins, over which the CPU time per
device is measured. RSS is reported per device as a total and as the growth over the
process's size before the first device.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .fleet import Fleet, FleetConfig
from .progress import ProgressDisplay
from .stats import cpu_seconds, rss_bytes

if TYPE_CHECKING:
    from .gateways import GatewayFleet


async def run_fleet(config: FleetConfig, *, duration: float | None = None,
                    register_timeout: float | None = None, progress: str = "auto",
                    interval: float = 2.0, deregister: bool | None = None,
                    json_summary: Path | None = None,
                    gateways: GatewayFleet | None = None) -> dict[str, Any]:
    """Run until ``duration`` seconds of steady state (None: until interrupted).
    ``gateways`` run alongside the fleet (started after it, counted as registered once all
    of them are); ``config.count`` may then be 0."""
    base_rss = rss_bytes()
    fleet = Fleet(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    await fleet.start()
    if gateways is not None:
        try:
            await gateways.start()
        except BaseException:
            await gateways.stop(deregister=False)
            await fleet.stop(deregister=deregister)
            raise
    stats = fleet.stats
    steady_from: float | None = None
    steady_cpu = 0.0
    registered_in: float | None = None
    timed_out = False
    with ProgressDisplay(progress) as display:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            now = fleet.now()
            display.update(stats.snapshot(now))
            if steady_from is None:
                everyone = stats.registered >= config.count and (
                    gateways is None or gateways.registered >= gateways.config.gateways)
                late = register_timeout is not None and now - fleet.started_at > (
                    register_timeout)
                if everyone or late:
                    timed_out = not everyone
                    registered_in = (stats.last_registered_at - fleet.started_at
                                     if everyone else None)
                    if everyone and gateways is not None:  # gateways keep no timestamps
                        registered_in = now - fleet.started_at
                    steady_from = now
                    steady_cpu = cpu_seconds()
            elif duration is not None and now - steady_from >= duration:
                break
    end = fleet.now()
    end_cpu = cpu_seconds()
    end_rss = rss_bytes()
    snapshot = stats.snapshot(end)
    gateway_summary = gateways.summary() if gateways is not None else None
    if gateways is not None:
        await gateways.stop(deregister=deregister if deregister is not None
                            else config.profile.deregister_on_stop)
    await fleet.stop(deregister=deregister)
    window = (end - steady_from) if steady_from is not None else 0.0
    devices = max(1, stats.sockets)
    summary: dict[str, Any] = {
        "devices": config.count,
        "registered": snapshot["registered"],
        "registration_seconds": round(registered_in, 2) if registered_in else None,
        "registered_per_second": (round(config.count / registered_in, 1)
                                  if registered_in else None),
        "register_timed_out": timed_out,
        "rss_mb": round(end_rss / 2**20, 1),
        "rss_per_device_kb": round(end_rss / devices / 1024, 3),
        "rss_growth_per_device_kb": round((end_rss - base_rss) / devices / 1024, 3),
        "steady_window_s": round(window, 1),
        "steady_cpu_s": round(end_cpu - steady_cpu, 3) if steady_from else None,
        "cpu_us_per_device_per_s": (round((end_cpu - steady_cpu) / window / devices * 1e6, 3)
                                    if steady_from and window > 0 else None),
        "failed_attempts": snapshot["failed_attempts"],
        "updates": snapshot["updates"],
        "sends": snapshot["sends"],
        "send_failures": snapshot["send_failures"],
        "notifications": snapshot["notifications"],
        "requests_served": snapshot["requests_served"],
        "deregistrations": stats.deregistrations,
    }
    if gateway_summary is not None:
        summary.update(gateway_summary)
    if json_summary is not None:
        json_summary.write_text(json.dumps(summary, indent=2))
    return summary
