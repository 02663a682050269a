from __future__ import annotations

from aiolwm2m.coap.codes import Code, MessageType
from aiolwm2m.coap.message import Message
from aiolwm2m.coap.observe import ObserverRegistry


def observe_request(peer: object, token: bytes, path: str = "/t") -> Message:
    m = Message.request(Code.GET, path, observe=0, token=token)
    m.remote = peer
    return m


def test_same_client_same_resource_replaces_entry() -> None:
    reg = ObserverRegistry()
    reg.add(observe_request("a", b"1"), "res", 0.0)
    reg.add(observe_request("a", b"2"), "res", 0.0)
    reg.add(observe_request("b", b"1"), "res", 0.0)
    reg.add(observe_request("a", b"3", "/t/other"), "res", 0.0)
    assert sorted((o.peer, o.token) for o in reg.observers("res")) == [
        ("a", b"2"), ("a", b"3"), ("b", b"1")]
    assert reg.remove("a", b"2") is not None
    assert len(reg) == 2
    reg.remove_peer("a")
    assert len(reg) == 1


def test_sequence_numbers_increase_and_confirmable_policy() -> None:
    reg = ObserverRegistry(con_every=3, con_interval=100.0)
    obs = reg.add(observe_request("a", b"1"), "res", 0.0)
    seqs, types = [], []
    for i in range(6):
        note = reg.prepare(obs, Message(code=Code.CONTENT, payload=b"%d" % i), float(i))
        seqs.append(note.observe)
        types.append(note.mtype)
        assert note.token == b"1"
    assert seqs == sorted(seqs) and len(set(seqs)) == 6
    assert types.count(MessageType.CON) == 2  # every third
    note = reg.prepare(obs, Message(code=Code.CONTENT), 500.0)
    assert note.mtype == MessageType.CON  # interval elapsed


def test_error_notification_ends_observation() -> None:
    reg = ObserverRegistry()
    obs = reg.add(observe_request("a", b"1"), "res", 0.0)
    note = reg.prepare(obs, Message(code=Code.NOT_FOUND), 1.0)
    assert note.observe is None
    assert len(reg) == 0
