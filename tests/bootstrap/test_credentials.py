"""Provisioned and bootstrap credentials: their Security-object form, the LwM2M server's
security-store form, configuration files and persistence, and what is refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from aiolwm2m.bootstrap import (
    AccountCredentials,
    BootstrapCredentials,
    BootstrapServer,
    BootstrapServerConfig,
    ConfigurationConflict,
    ConfigurationError,
    CredentialsError,
    EndpointConfig,
    load_config_file,
)
from aiolwm2m.bootstrap.session import plan
from aiolwm2m.lwm2m.model import ModelRegistry
from aiolwm2m.lwm2m.nodes import ObjectInstance
from aiolwm2m.security.credentials import CertificateUsage, generate_p256_key
from aiolwm2m.security.pem import certificates_der
from aiolwm2m.store.memory import MemorySecurityStore
from aiolwm2m.store.records import SecurityInfo

from ..security.pki import Pki, make_pki

SERVER = generate_p256_key()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(Path(tmp_path_factory.mktemp("pki")))


def test_account_credentials_in_each_mode(pki: Pki) -> None:
    psk = AccountCredentials.new_psk("dev-1")
    assert (psk.mode, psk.public_key_or_identity, len(psk.secret_key)) == (0, b"dev-1", 16)
    assert psk.security_info("dev-1") == SecurityInfo("dev-1", psk_identity=b"dev-1",
                                                      psk_key=psk.secret_key)
    assert repr(psk.secret_key) not in repr(psk)  # keys stay out of logs

    rpk = AccountCredentials.new_rpk(SERVER.public_key_pem)
    assert rpk.mode == 1 and rpk.server_public_key == SERVER.public_key_der
    assert rpk.security_info("dev-2").rpk_public_key == rpk.public_key_or_identity
    assert AccountCredentials.new_rpk(SERVER.public_key_der).public_key_or_identity != (
        rpk.public_key_or_identity)  # a fresh key pair each time

    x509 = AccountCredentials.x509(pki.read("client1_chain.pem"), pki.read("client1.key"),
                                   pki.read("root.pem"), CertificateUsage.CA_CONSTRAINT)
    assert x509.public_key_or_identity == b"".join(
        certificates_der(pki.read("client1_chain.pem")))
    assert x509.server_public_key == certificates_der(pki.read("root.pem"))[0]
    assert x509.certificate_usage == 0 and x509.certificate_name() == "client1"
    assert x509.security_info("dev-3") == SecurityInfo("dev-3", x509_identity="client1")


def test_account_credentials_refusals(pki: Pki) -> None:
    with pytest.raises(CredentialsError, match="EST"):
        AccountCredentials(4)
    with pytest.raises(CredentialsError, match="resource 4"):
        AccountCredentials(1, b"k", b"", b"s")
    with pytest.raises(CredentialsError, match="NoSec"):
        AccountCredentials().security_info("x")
    with pytest.raises(CredentialsError, match="server certificate"):
        AccountCredentials.x509(pki.read("client1.pem"), pki.read("client1.key"), b"junk")
    stored = SecurityInfo("dev", rpk_public_key=generate_p256_key().public_key_der)
    with pytest.raises(CredentialsError, match="private key"):
        AccountCredentials.from_security_info(stored)
    with pytest.raises(CredentialsError, match="does not belong"):
        AccountCredentials.from_security_info(stored, private_key=generate_p256_key()
                                              .private_key_der,
                                              server_public_key=SERVER.public_key_der)
    with pytest.raises(CredentialsError, match="names 'client1'"):
        AccountCredentials.from_security_info(
            SecurityInfo("dev", x509_identity="client2"), certificate=pki.read("client1.pem"),
            private_key=pki.read("client1.key"), server_certificate=pki.read("server.pem"))


def test_for_server_from_the_security_store_entry() -> None:
    info = SecurityInfo("dev", psk_identity=b"dev", psk_key=b"k" * 16)
    config = EndpointConfig.for_server("coaps://lwm2m.example", 4, security=info)
    sec = config.security[0]
    assert (sec.security_mode, sec.public_key_or_identity, sec.secret_key,
            sec.short_server_id) == (0, b"dev", b"k" * 16, 4)
    assert config.servers[0].binding == "U"
    assert EndpointConfig.for_server("coaps+tcp://h", security=info).servers[0].binding == "T"
    with pytest.raises(ConfigurationError, match="needs credentials"):
        EndpointConfig.for_server("coaps://h")
    with pytest.raises(ConfigurationError, match="need a coaps"):
        EndpointConfig.for_server("coap://h", security=info)
    with pytest.raises(ConfigurationError, match="private key"):
        EndpointConfig.for_server("coaps://h", security=SecurityInfo(
            "dev", rpk_public_key=SERVER.public_key_der))


def test_security_instance_carries_every_resource(pki: Pki) -> None:
    account = AccountCredentials.x509(pki.read("client1.pem"), pki.read("client1.key"),
                                      pki.read("server.pem"), sni="lwm2m.example")
    config = EndpointConfig.for_server("coaps://h", 2, security=account)
    write = plan(config, ModelRegistry.with_core_objects())[2]
    node = write.node  # type: ignore[union-attr]
    assert isinstance(node, ObjectInstance)
    values = {rid: r.value for rid, r in node.resources.items()}  # type: ignore[union-attr]
    assert values[2] == 2 and values[15] == 3 and values[14] == "lwm2m.example"
    assert values[3] == certificates_der(pki.read("client1.pem"))[0]
    assert values[4] == certificates_der(pki.read("server.pem"))[0]


def test_round_trip_and_file(tmp_path: Path) -> None:
    creds = BootstrapCredentials.rpk(generate_p256_key().public_key_pem)
    account = AccountCredentials.new_psk("dev")
    config = EndpointConfig.for_server("coaps://h", security=account,
                                       bootstrap_credentials=creds)
    assert EndpointConfig.from_dict(config.to_dict()) == config
    assert creds.identity == "rpk:" + hashlib.sha256(creds.rpk_public_key or b"").hexdigest()
    path = tmp_path / "bs.toml"
    path.write_text("""
[[endpoints.dev.security]]
instance_id = 1
server_uri = "coaps://h"
security_mode = "x509"
public_key_or_identity = "3003020101"
server_public_key = "3003020101"
secret_key = "3003020101"
certificate_usage = 1
short_server_id = 1
[[endpoints.dev.servers]]
instance_id = 0
short_server_id = 1
[endpoints.dev.bootstrap_credentials]
psk_identity = "text:dev-bs"
psk_key = "00ff"
""")
    dev = load_config_file(path)["dev"]
    assert dev.security[0].certificate_usage == 1
    assert dev.bootstrap_credentials == BootstrapCredentials.psk("dev-bs", b"\x00\xff")
    path.write_text(path.read_text().replace('psk_key = "00ff"', ""))
    with pytest.raises(ConfigurationError, match="needs its psk_key"):
        load_config_file(path)
    path.write_text(path.read_text().replace("certificate_usage = 1", "certificate_usage = 7"))
    with pytest.raises(ConfigurationError, match=r"outside 0\.\.3"):
        load_config_file(path)


async def test_bootstrap_credentials_are_one_endpoints_and_persist(tmp_path: Path) -> None:
    cfg = BootstrapServerConfig(host="::1", port=0, coaps_port=0, store="sqlite",
                                data_dir=tmp_path)
    base = EndpointConfig.for_server("coap://h")
    creds = BootstrapCredentials.psk("id-1", b"secret")
    mine = EndpointConfig(base.security, base.servers, bootstrap_credentials=creds)
    bs = BootstrapServer(cfg)
    await bs.start()
    try:
        await bs.set_config("dev-1", mine)
        with pytest.raises(ConfigurationConflict, match="already belong to endpoint 'dev-1'"):
            await bs.set_config("dev-2", mine)
        with pytest.raises(ConfigurationError, match="not to the default"):
            await bs.set_config("*", mine)
        await bs.set_config("dev-1", mine)  # the same endpoint may store them again
    finally:
        await bs.stop()
    # The LwM2M server's security store holds what devices present to that server, never
    # what they present to the Bootstrap-Server.
    store = MemorySecurityStore()
    await store.put(SecurityInfo("dev-9", x509_identity="device-nine"))
    again = BootstrapServer(cfg, server_security=store)
    await again.start()
    try:
        assert again.bootstrap_identity("dev-1") == "psk:id-1"
        assert again.bootstrap_identity("dev-9") is None
        assert again.bootstrap_identity("dev-2") is None
        assert again._psk_index[b"id-1"] == ("dev-1", b"secret")
        await again.remove_config("dev-1")
        assert again.bootstrap_identity("dev-1") is None and not again._psk_index
    finally:
        await again.stop()
