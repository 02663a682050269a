"""Live progress of a fleet: a rich table on a terminal, one line per interval otherwise."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table


def _table(snap: dict[str, Any], title: str) -> Table:
    table = Table(title=title, show_header=False, min_width=48)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    rows = [
        ("started", f"{snap['started']:,} / {snap['devices']:,}"),
        ("registered", f"[green]{snap['registered']:,}[/green]"),
        ("registering", f"{snap['registering']:,}"),
        ("bootstrapping", f"{snap['bootstrapping']:,}"),
        ("retrying", f"[yellow]{snap['retrying']:,}[/yellow]"),
        ("failed attempts", f"[red]{snap['failed_attempts']:,}[/red]"),
        ("updates / sends", f"{snap['updates']:,} / {snap['sends']:,}"),
        ("notifications", f"{snap['notifications']:,}"),
        ("server requests served", f"{snap['requests_served']:,}"),
        ("RSS", f"{snap['rss_mb']:,.1f} MB ({snap['rss_per_device_kb']:.2f} KB/device)"),
        ("CPU", f"{snap['cpu_s']:.1f} s"),
        ("elapsed", f"{snap['elapsed_s']:.1f} s"),
    ]
    if snap.get("last_failure"):
        rows.append(("last failure", str(snap["last_failure"])[:60]))
    for name, value in rows:
        table.add_row(name, value)
    return table


def progress_line(snap: dict[str, Any]) -> str:
    return (f"[{snap['elapsed_s']:8.1f}s] started {snap['started']}/{snap['devices']} "
            f"registered {snap['registered']} registering {snap['registering']} "
            f"bootstrapping {snap['bootstrapping']} retrying {snap['retrying']} "
            f"failed {snap['failed_attempts']} updates {snap['updates']} sends {snap['sends']} "
            f"notifications {snap['notifications']} rss {snap['rss_mb']}MB "
            f"({snap['rss_per_device_kb']}KB/dev) cpu {snap['cpu_s']}s")


class ProgressDisplay:
    """``mode``: ``rich`` (live table), ``lines`` (plain lines), ``none``."""

    def __init__(self, mode: str = "auto", stream: TextIO | None = None,
                 title: str = "aiolwm2m simulate") -> None:
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "rich" if self.stream.isatty() else "lines"
        self.mode = mode
        self.title = title
        self._live: Live | None = None

    def __enter__(self) -> ProgressDisplay:
        if self.mode == "rich":
            self._live = Live(console=Console(file=self.stream), refresh_per_second=4,
                              transient=False)
            self._live.__enter__()
        return self

    def update(self, snap: dict[str, Any]) -> None:
        if self.mode == "rich" and self._live is not None:
            self._live.update(_table(snap, self.title))
        elif self.mode == "lines":
            print(progress_line(snap), file=self.stream, flush=True)

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)


def print_summary(summary: dict[str, Any], stream: TextIO | None = None) -> None:
    console = Console(file=stream or sys.stderr)
    table = Table(title="simulation summary", show_header=False)
    table.add_column("figure", style="bold")
    table.add_column("value", justify="right")
    for key, value in summary.items():
        if isinstance(value, float):
            value = f"{value:,.3f}"
        table.add_row(key.replace("_", " "), str(value))
    console.print(table)
