"""The server's gateway limits, as an operator sets them: flags, the TOML file (same names),
and values that make no sense refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiolwm2m.cli.main import build_parser
from aiolwm2m.cli.server_cmd import RunningServer, settings_from
from aiolwm2m.cli.settings import SettingsError


def test_gateway_limits_from_flags_and_toml(tmp_path: Path) -> None:
    args = build_parser().parse_args([
        "server", "--data-dir", str(tmp_path), "--max-end-devices-per-gateway", "20000",
        "--max-end-device-objects", "50"])
    config = RunningServer(settings_from(args)).server.config
    assert (config.max_end_devices_per_gateway, config.max_end_device_objects) == (20000, 50)
    toml = tmp_path / "server.toml"
    toml.write_text("max_end_devices_per_gateway = 30000\nmax_end_device_objects = 70\n")
    settings = settings_from(build_parser().parse_args(["server", "--config", str(toml)]))
    assert (settings.max_end_devices_per_gateway, settings.max_end_device_objects) == (
        30000, 70)
    defaults = settings_from(build_parser().parse_args(["server"]))
    assert (defaults.max_end_devices_per_gateway, defaults.max_end_device_objects) == (
        10000, 1000)


@pytest.mark.parametrize("flag", ["--max-end-devices-per-gateway", "--max-end-device-objects"])
def test_gateway_limits_below_one_are_refused(flag: str) -> None:
    with pytest.raises(SettingsError, match=flag[2:].replace("-", "_") + " must be at least 1"):
        settings_from(build_parser().parse_args(["server", flag, "0"]))
