"""Endpoint configurations: the Python API, TOML / JSON files, validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aiolwm2m.bootstrap import (
    AclConfig,
    ConfigurationError,
    EndpointConfig,
    SecurityConfig,
    ServerAccountConfig,
    load_config_file,
)
from aiolwm2m.lwm2m import LwM2MPath

TOML = '''
[endpoints."*"]
delete = ["/0", "/1", "/2"]
discover = true

[[endpoints."*".security]]
instance_id = 1
server_uri = "coaps://lwm2m.example:5684"
security_mode = "psk"
public_key_or_identity = "text:device-7"
secret_key = "00112233445566778899aabbccddeeff"
short_server_id = 101

[[endpoints."*".servers]]
instance_id = 0
short_server_id = 101
lifetime = 600
binding = "UQ"
default_min_period = 5
mute_send = true

[[endpoints."*".acls]]
instance_id = 0
object_id = 3
object_instance_id = 0
owner = 101
acl = { "0" = 1, "101" = 15 }

[[endpoints."*".writes]]
path = "/3303/0"
values = { "5750" = "room" }

[endpoints.special]
content_format = 112
[[endpoints.special.security]]
instance_id = 3
server_uri = "coap://other"
short_server_id = 2
[[endpoints.special.servers]]
instance_id = 1
short_server_id = 2
'''


def test_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "bs.toml"
    path.write_text(TOML)
    configs = load_config_file(path)
    default = configs["*"]
    sec = default.security[0]
    assert sec.security_mode == 0 and sec.public_key_or_identity == b"device-7"
    assert sec.secret_key == bytes.fromhex("00112233445566778899aabbccddeeff")
    assert sec.values()[10] == 101 and sec.values()[0] == "coaps://lwm2m.example:5684"
    srv = default.servers[0]
    assert srv.values() == {0: 101, 1: 600, 6: True, 7: "UQ", 2: 5, 23: True}
    assert default.acls[0].values() == {0: 3, 1: 0, 2: {0: 1, 101: 15}, 3: 101}
    assert default.delete == (LwM2MPath(0), LwM2MPath(1), LwM2MPath(2)) and default.discover
    assert default.writes[0].path == LwM2MPath(3303, 0)
    assert configs["special"].content_format == 112


def test_json_round_trip(tmp_path: Path) -> None:
    config = EndpointConfig(
        (SecurityConfig(0, "coap://bs", bootstrap_server=True),
         SecurityConfig(1, "coap://s", security_mode=2, server_public_key=b"\x01\x02",
                        short_server_id=9)),
        (ServerAccountConfig(0, 9, 30, "U", disable_timeout=10),),
        (AclConfig(2, 3303, 65535, owner=9, acl={9: 16}),))
    again = EndpointConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    path = tmp_path / "bs.json"
    path.write_text(json.dumps({"endpoints": {"dev": config.to_dict()}}))
    assert load_config_file(path) == {"dev": config}


@pytest.mark.parametrize(("data", "message"), [
    ({"security": [{"instance_id": 1}]}, "server_uri is required"),
    ({"security": [{"instance_id": 1, "server_uri": "coap://x"}]}, "short_server_id"),
    ({"security": [{"instance_id": 1, "server_uri": "coap://x", "short_server_id": 1,
                    "security_mode": "magic"}]}, "security_mode"),
    ({"security": [{"instance_id": 1, "server_uri": "coap://x", "short_server_id": 1,
                    "secret_key": "zz"}]}, "not hex"),
    ({"security": [{"instance_id": 1, "server_uri": "coap://x", "short_server_id": 1}]},
     "has no server entry"),
    ({"servers": [{"instance_id": 0, "short_server_id": 0}]}, "outside 1..65534"),
    ({"servers": [{"instance_id": 0, "short_server_id": 1, "lifetime": -5}]}, "positive"),
    ({"servers": [{"instance_id": 0, "short_server_id": 1},
                  {"instance_id": 0, "short_server_id": 2}]}, "instance ids repeat"),
    ({"acls": [{"instance_id": 0, "object_id": 3}]}, "required"),
    ({"writes": [{"path": "/3303", "values": {}}]}, "object instance"),
    ({"delete": ["not a path"]}, "delete"),
    ({"surprise": 1}, "unknown field"),
])
def test_validation_names_the_problem(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        EndpointConfig.from_dict(data)


def test_bad_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[endpoints\n")
    with pytest.raises(ConfigurationError, match=r"broken\.toml"):
        load_config_file(broken)
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    with pytest.raises(ConfigurationError, match="endpoints"):
        load_config_file(empty)
