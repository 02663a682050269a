"""The RD's settings of ``aiolwm2m server``: flags, TOML, environment, and their checks."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from aiolwm2m.cli.server_cmd import RunningServer, add_server_flags, settings_from
from aiolwm2m.cli.settings import SettingsError, load_settings
from aiolwm2m.rd.config import DEFAULT_RD_LIMITS


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_server_flags(parser)
    return parser.parse_args(list(argv))


def test_flags_reach_the_server_config(tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIOLWM2M_RD_MAX_LOOKUP_RESULTS", "50")
    config = tmp_path / "s.toml"
    config.write_text("rd_max_links = 20\nrd_max_registrations_per_address = 0\n")
    args = parse("--config", str(config), "--rd-max-registrations", "10",
                 "--rd-max-registration-bytes", "4096", "--data-dir", str(tmp_path))
    cfg = RunningServer(settings_from(args)).server.config
    assert cfg.rd is True
    limits = cfg.rd_limits
    assert (limits.max_links, limits.max_registrations, limits.max_registration_bytes,
            limits.max_registrations_per_address, limits.max_lookup_results) == (
        20, 10, 4096, 0, 50)
    assert RunningServer(settings_from(parse("--no-rd"))).server.config.rd is False
    monkeypatch.delenv("AIOLWM2M_RD_MAX_LOOKUP_RESULTS")
    defaults = RunningServer(settings_from(parse())).server.config.rd_limits
    assert defaults == DEFAULT_RD_LIMITS


@pytest.mark.parametrize(("name", "value"), [
    ("rd_max_links", 0), ("rd_max_registrations", 0), ("rd_max_lookup_results", 0),
    ("rd_max_registration_bytes", 10), ("rd_max_registrations_per_address", -1)])
def test_bad_values_are_refused(name: str, value: int) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings(None, {}, {name: value})


def test_rd_policy_from_toml_and_from_a_file(tmp_path: Path) -> None:
    from aiolwm2m.rd.policy import parse_policy

    config = tmp_path / "s.toml"
    config.write_text('[rd_policy]\nanonymous_lookup = false\n'
                      '[rd_policy.identities."psk:gw-1"]\nendpoints = ["meter-*"]\n')
    cfg = RunningServer(settings_from(parse("--config", str(config),
                                            "--data-dir", str(tmp_path)))).server.config
    assert cfg.rd_policy == parse_policy({"anonymous_lookup": False, "identities": {
        "psk:gw-1": {"endpoints": ["meter-*"]}}})
    policy_file = tmp_path / "policy.json"
    policy_file.write_text('{"sector_lookup": true}')
    cfg = RunningServer(settings_from(parse("--rd-policy", str(policy_file),
                                            "--data-dir", str(tmp_path)))).server.config
    assert cfg.rd_policy == parse_policy({"sector_lookup": True})
    assert RunningServer(settings_from(parse())).server.config.rd_policy is None


def test_a_bad_rd_policy_stops_the_start(tmp_path: Path) -> None:
    config = tmp_path / "s.toml"
    config.write_text('[rd_policy.identities."psk:gw-1"]\nendpoints = ["me*ter"]\n')
    with pytest.raises(SettingsError, match=r"rd_policy: .*'\*' may only end a pattern"):
        settings_from(parse("--config", str(config)))
    with pytest.raises(SettingsError, match="cannot read RD policy file"):
        load_settings(None, {"AIOLWM2M_RD_POLICY": str(tmp_path / "missing.toml")}, {})
    with pytest.raises(SettingsError, match="unknown key"):
        load_settings(None, {}, {"rd_policy": {"anonymous": True}})
    with pytest.raises(SettingsError, match="group_concurrency"):
        load_settings(None, {}, {"group_concurrency": 0})
