"""The firmware settings of ``aiolwm2m server``: flags, TOML and environment, checked."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from aiolwm2m.cli.server_cmd import RunningServer, add_server_flags, settings_from
from aiolwm2m.cli.settings import SettingsError, load_settings


def test_flags_reach_the_server_config(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_server_flags(parser)
    args = parser.parse_args(["--firmware-max-image", "2048", "--firmware-public-host",
                              "fw.example.com", "--data-dir", str(tmp_path)])
    running = RunningServer(settings_from(args))
    assert running.server.config.firmware_max_image == 2048
    assert running.server.config.firmware_public_host == "fw.example.com"
    default = RunningServer(load_settings(None, {}, {"data_dir": tmp_path}))
    assert default.server.config.firmware_max_image == 64 << 20
    assert default.server.config.firmware_public_host is None


def test_toml_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "s.toml"
    config.write_text('firmware_max_image = 5000\nfirmware_public_host = "10.0.0.1"\n')
    s = load_settings(config, {"AIOLWM2M_FIRMWARE_MAX_IMAGE": "7000"}, {})
    assert (s.firmware_max_image, s.firmware_public_host) == (7000, "10.0.0.1")
    with pytest.raises(SettingsError, match="firmware_max_image must be at least 1024"):
        load_settings(None, {"AIOLWM2M_FIRMWARE_MAX_IMAGE": "10"}, {})
