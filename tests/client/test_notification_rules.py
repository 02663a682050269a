"""pmin, pmax, gt, lt, st, epmin, epmax: the pure rules and the engine, with a fake clock."""

from __future__ import annotations

from aiolwm2m.client.attribute_store import AttributeStore
from aiolwm2m.client.notification_rules import path_timing, value_condition_met
from aiolwm2m.client.observations import ObservationEngine
from aiolwm2m.coap.codes import Code
from aiolwm2m.coap.message import Message
from aiolwm2m.lwm2m import LwM2MPath, NotificationAttributes, parse_write_attributes

A = NotificationAttributes
P = LwM2MPath(3303, 0, 5700)


def test_value_conditions() -> None:
    assert value_condition_met(A(), 1.0, 2.0)
    assert not value_condition_met(A(gt=30), 20.0, 25.0)
    assert value_condition_met(A(gt=30), 25.0, 31.0)  # crossed upwards
    assert value_condition_met(A(gt=30), 31.0, 29.0)  # and downwards
    assert not value_condition_met(A(lt=10), 12.0, 11.0)
    assert value_condition_met(A(lt=10), 12.0, 9.5)
    assert not value_condition_met(A(st=2), 20.0, 21.5)
    assert value_condition_met(A(st=2), 20.0, 22.0)
    assert value_condition_met(A(gt=30, st=5), 20.0, 25.0)  # any condition is enough


def test_timing_pmin_pmax() -> None:
    t = path_timing(A(pmin=10, pmax=60), now=105, last_notify=100, last_eval=100,
                    changed=True, previous=1.0, current=2.0)
    assert not t.due and t.keep_change and t.wake_at == 110
    t = path_timing(A(pmin=10, pmax=60), now=110, last_notify=100, last_eval=100,
                    changed=True, previous=1.0, current=2.0)
    assert t.due
    t = path_timing(A(pmin=10, pmax=60), now=159, last_notify=100, last_eval=100,
                    changed=False, previous=1.0, current=None)
    assert not t.due and t.wake_at == 160
    assert path_timing(A(pmax=60), now=160, last_notify=100, last_eval=100, changed=False,
                       previous=None, current=None).due
    # pmax not above pmin is ignored
    assert path_timing(A(pmin=60, pmax=30), now=500, last_notify=100, last_eval=100,
                       changed=False, previous=None, current=None).wake_at is None


def test_timing_epmin_epmax() -> None:
    t = path_timing(A(epmin=5), now=102, last_notify=0, last_eval=100, changed=True,
                    previous=1.0, current=2.0)
    assert not t.due and t.keep_change and t.wake_at == 105
    t = path_timing(A(epmax=30), now=131, last_notify=0, last_eval=100, changed=False,
                    previous=1.0, current=2.0)
    assert t.due and t.evaluated  # re-evaluated without a reported change: it moved
    t = path_timing(A(epmax=30), now=131, last_notify=0, last_eval=100, changed=False,
                    previous=2.0, current=2.0)
    assert not t.due and t.evaluated and t.wake_at == 161  # sampled, unchanged


class Values:
    def __init__(self) -> None:
        self.v = 20.0

    def __call__(self, path: LwM2MPath) -> float | None:
        return self.v


def engine_with(query: str) -> tuple[ObservationEngine, Values]:
    store = AttributeStore()
    store.apply(1, P, parse_write_attributes(query), None)
    values = Values()
    return ObservationEngine(lambda ssid, p: store.effective(ssid, p), values), values


def test_engine_holds_changes_until_pmin_and_sends_on_pmax() -> None:
    engine, values = engine_with("pmin=2&pmax=10")
    req = Message.request(Code.GET, "/3303/0/5700", observe=0, token=b"t")
    obs = engine.add("k", 1, (P,), False, req, now=0.0)
    assert engine.next_deadline() == 10.0
    values.v = 21.0
    assert engine.value_changed(P, 1.0)
    assert engine.poll(1.0) == [] and obs.wake_at == 2.0
    assert engine.poll(2.0) == [obs]
    engine.notified(obs, 2.0)
    assert engine.next_deadline() == 12.0
    assert engine.poll(11.9) == []
    assert engine.poll(12.0) == [obs]


def test_engine_drops_insignificant_changes() -> None:
    engine, values = engine_with("st=1")
    obs = engine.add("k", 1, (P,), False, Message.request(Code.GET, "/"), now=0.0)
    values.v = 20.5
    engine.value_changed(P, 1.0)
    assert engine.poll(1.0) == [] and not obs.changed
    values.v = 21.2
    engine.value_changed(P, 2.0)
    assert engine.poll(2.0) == [obs]


def test_inheritance_and_server_defaults() -> None:
    store = AttributeStore()
    store.apply(1, LwM2MPath(3303), parse_write_attributes("pmin=5&pmax=50"), None)
    store.apply(1, LwM2MPath(3303, 0, 5700), parse_write_attributes("pmax=20"), None)
    eff = store.effective(1, P, A(pmin=1, pmax=300))
    assert (eff.pmin, eff.pmax) == (5, 20)
    assert store.effective(2, P, A(pmin=1)).pmin == 1  # attributes belong to a server
    store.apply(1, LwM2MPath(3303, 0, 5700), parse_write_attributes("pmax"), None)
    assert store.effective(1, P).pmax == 50
