"""The bootstrap session state machine, without a network."""

from __future__ import annotations

from aiolwm2m.bootstrap import EndpointConfig, plan
from aiolwm2m.bootstrap.session import CONTINUE, DONE, FAILED, BootstrapSession
from aiolwm2m.coap.codes import Code
from aiolwm2m.lwm2m import LwM2MPath, ModelRegistry, ObjectInstance
from aiolwm2m.lwm2m.operations import (
    BootstrapDeleteRequest,
    BootstrapDiscoverRequest,
    BootstrapFinishRequest,
    BootstrapWriteRequest,
    DiscoverResponse,
    Response,
)

MODEL = ModelRegistry.with_core_objects()
CONFIG = EndpointConfig.for_server("coap://srv", 4, lifetime=60)


def test_plan_order_and_content() -> None:
    ops = plan(EndpointConfig(CONFIG.security, CONFIG.servers, discover=True), MODEL)
    kinds = [type(op) for op in ops]
    assert kinds == [BootstrapDiscoverRequest, BootstrapDeleteRequest, BootstrapDeleteRequest,
                     BootstrapWriteRequest, BootstrapWriteRequest, BootstrapFinishRequest]
    write_sec, write_srv = ops[3], ops[4]
    assert isinstance(write_sec, BootstrapWriteRequest)
    assert write_sec.path == LwM2MPath(0, 1)
    assert isinstance(write_sec.node, ObjectInstance)
    assert write_sec.node.resources[0].value == "coap://srv"  # type: ignore[union-attr]
    assert write_sec.node.resources[10].value == 4  # type: ignore[union-attr]
    assert isinstance(write_srv, BootstrapWriteRequest)
    assert write_srv.node.resources[1].value == 60  # type: ignore[union-attr]


def session(attempts: int = 2) -> BootstrapSession:
    return BootstrapSession("id", "ep", plan(CONFIG, MODEL), attempts=attempts)


def ok(code: int = Code.CHANGED) -> Response:
    return Response(code)


def test_happy_path() -> None:
    s = session()
    answers = [Code.DELETED, Code.DELETED, Code.CHANGED, Code.CHANGED, Code.CHANGED]
    for code in answers:
        assert s.current is not None
        s.sent()
        outcome = s.on_response(ok(code))
    assert outcome == DONE and s.current is None and s.answered == 5


def test_retries_then_gives_up() -> None:
    s = session(attempts=2)
    s.sent()
    assert s.on_timeout() == CONTINUE  # second try of the same Delete
    assert isinstance(s.current, BootstrapDeleteRequest)
    s.sent()
    assert s.on_timeout() == FAILED
    assert s.error is not None and "after 2 attempts" in s.error


def test_delete_errors_are_tolerated_write_errors_are_not() -> None:
    s = session()
    s.sent()
    assert s.on_response(ok(Code.BAD_REQUEST)) == CONTINUE
    assert s.warnings == ["bootstrap-delete /0 answered 4.00"]
    s.sent()
    s.on_response(ok(Code.DELETED))
    s.sent()
    assert s.on_response(Response(Code.NOT_FOUND, "no object 0")) == FAILED
    assert s.error == "bootstrap-write /0/1 answered 4.04: no object 0"


def test_finish_refused() -> None:
    s = session()
    for code in (Code.DELETED, Code.DELETED, Code.CHANGED, Code.CHANGED):
        s.sent()
        s.on_response(ok(code))
    s.sent()
    assert s.on_response(Response(Code.NOT_ACCEPTABLE, "no account")) == FAILED
    assert "4.06" in (s.error or "")


def test_discover_result_is_kept() -> None:
    s = BootstrapSession("id", "ep", plan(EndpointConfig(CONFIG.security, CONFIG.servers,
                                                         discover=True), MODEL))
    s.sent()
    s.on_response(DiscoverResponse(Code.CONTENT, links=()))
    assert isinstance(s.current, BootstrapDeleteRequest)
