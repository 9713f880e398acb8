"""plugins/filter/cnt_verify.py: a fleet verification's judgement, case by case."""

from __future__ import annotations

import json

import pytest

from plugins.loader import load

verify = load("filter/cnt_verify.py")

HEALTHY = {"backend": "healthy", "livekit": "healthy", "voice_agent": "healthy"}
IN = {"in_service": True, "out": []}


def reading(services=None, version="v2", node_ip="10.0.0.1", double=False):
    return {
        "services": services or dict(HEALTHY),
        "version": version,
        "node_ip": node_ip,
        "livekit_test_double": double,
    }


def heard(received=True):
    return {"stdout": json.dumps({"received": received})}


def emitted(ips, now=1000.0, age=1.0):
    return {"stdout": json.dumps({"now": now, "nodes": [{"ip": ip, "updated_at": now - age} for ip in ips]})}


def result(readings, lb=None, listened=None, emitter=None, socketio=True):
    return verify.cnt_verify_result(
        readings,
        lb_status=lb if lb is not None else dict.fromkeys(readings, IN),
        listened=listened if listened is not None else {h: heard() for h in readings},
        emitter=emitter if emitter is not None else emitted([r["node_ip"] for r in readings.values() if r]),
        socketio=socketio,
        fresh_seconds=10,
    )


@pytest.mark.parametrize(
    ("answer", "state"),
    [
        ({"status": 200, "content": '{"redis":"ok"}'}, "healthy"),
        ({"status": 200, "content": '{"redis":"down"}'}, "unhealthy (HTTP 200)"),  # answers, but not the body
        ({"status": 503, "content": ""}, "unhealthy (HTTP 503)"),
        ({"status": -1, "msg": "Connection refused"}, "unhealthy (no answer)"),
        ({}, "unhealthy (no answer)"),
    ],
)
def test_service_state_from_a_health_answer(answer, state):
    results = [{"item": {"service": "backend", "body": '"redis":"ok"'}, **answer}]
    assert verify.cnt_verify_service_states(results) == {"backend": state}


def test_a_healthy_fleet_passes():
    r = result({"a": reading(node_ip="10.0.0.1"), "b": reading(node_ip="10.0.0.2")})
    assert r["socketio"] == {"expected": 2, "delivered": 2}
    assert r["livekit_nodes"]["registered"] == 2
    assert r["versions"] == {"a": "v2", "b": "v2"}
    assert verify.cnt_verify_passed(r) is True


def test_one_host_alone_passes():
    assert verify.cnt_verify_passed(result({"a": reading()})) is True


def test_an_unreachable_host_fails_with_every_service_unreachable():
    r = result({"a": reading(), "b": None}, listened={"a": heard()})
    assert r["hosts"]["b"] == {"backend": "unreachable", "livekit": "unreachable", "voice_agent": "unreachable"}
    assert r["socketio"]["delivered"] == 1
    assert verify.cnt_verify_passed(r) is False


def test_every_host_failing():
    sick = {**HEALTHY, "backend": "unhealthy (no answer)"}
    r = result({"a": reading(sick), "b": reading(sick)}, listened={})
    assert r["socketio"]["delivered"] == 0
    assert verify.cnt_verify_passed(r) is False


def test_a_host_out_of_the_load_balancer_fails_and_says_why():
    r = result(
        {"a": reading(), "b": reading(node_ip="10.0.0.2")},
        lb={"a": IN, "b": {"in_service": False, "out": ["lb: MAINT"]}},
    )
    assert r["load_balancer"]["b"] == "OUT: lb: MAINT"
    assert verify.cnt_verify_out_of_service(r) == ["b"]
    assert verify.cnt_verify_passed(r) is False


def test_a_host_whose_load_balancer_state_was_not_read_counts_as_out():
    r = result({"a": reading()}, lb={})
    assert r["load_balancer"]["a"] == "OUT: not read"


def test_an_event_missing_on_one_host_fails():
    r = result({"a": reading(), "b": reading(node_ip="10.0.0.2")}, listened={"a": heard(), "b": heard(False)})
    assert r["socketio_received"] == ["a"]
    assert verify.cnt_verify_passed(r) is False


def test_a_stale_livekit_node_is_not_registered():
    emitter = {
        "stdout": json.dumps(
            {"now": 1000, "nodes": [{"ip": "10.0.0.1", "updated_at": 1000}, {"ip": "10.0.0.2", "updated_at": 900}]}
        )
    }
    r = result({"a": reading(node_ip="10.0.0.1"), "b": reading(node_ip="10.0.0.2")}, emitter=emitter)
    assert r["livekit_nodes"]["registered"] == 1
    assert verify.cnt_verify_passed(r) is False


def test_with_the_livekit_test_double_the_node_check_is_not_checked_and_says_why():
    r = result({"a": reading(double=True)}, emitter={"stdout": "{}"})
    assert r["livekit_nodes"] == {
        "expected": 1,
        "registered": None,
        "checked": False,
        "note": "LiveKit TEST DOUBLE running: the multi-node check needs the real server",
    }
    assert verify.cnt_verify_passed(r) is True
    assert "LiveKit nodes in Redis: NOT CHECKED (LiveKit TEST DOUBLE running" in "\n".join(verify.cnt_verify_lines(r))


def test_without_the_socketio_probe_neither_check_runs_and_the_table_says_not_checked():
    r = result({"a": reading()}, listened={}, emitter={"skipped": True}, socketio=False)
    assert r["socketio"]["delivered"] is None and r["socketio"]["checked"] is False
    assert verify.cnt_verify_passed(r, socketio=False) is True
    lines = verify.cnt_verify_lines(r)
    assert any(line.startswith("Socket.IO through Redis: NOT CHECKED (not probed") for line in lines)


def test_an_emitter_that_printed_garbage_registers_no_node():
    r = result({"a": reading()}, emitter={"stdout": "Traceback (most recent call last)"})
    assert r["livekit_nodes"]["registered"] == 0


def test_the_table_has_a_row_per_host_and_the_hosts_out_of_service():
    r = result({"a": reading(), "b": reading(version="")}, lb={"a": IN, "b": {"in_service": False, "out": ["x"]}})
    lines = verify.cnt_verify_lines(r, "/tmp/verify.json")
    assert lines[0].split() == ["host", "backend", "livekit", "voice_agent", "version"]
    assert lines[1].split() == ["a", "healthy", "healthy", "healthy", "v2"]
    assert lines[2].split() == ["b", "healthy", "healthy", "healthy", "-"]
    assert "b                            load balancer: OUT: x" in lines
    assert lines[-1] == "Report: /tmp/verify.json"
