"""The decisions of a fleet verification (roles/cnt_verify): each service's state from
its health answer, the fleet's result from every host's readings, the table printed, and
pass or fail.

The role reads (health, the load balancer, the Socket.IO probe, LiveKit's nodes in
Redis); these functions judge. Tested in tests/unit/plugins/filter/test_cnt_verify.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ansible.module_utils.parsing.convert_bool import boolean

SERVICES = ("backend", "livekit", "voice_agent")
UNREACHABLE = dict.fromkeys(SERVICES, "unreachable")
NOT_CHANGED = "not probed: cnt_verify_socketio is false (a deploy that changed nothing)"


def cnt_verify_service_states(health_results: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """{service: 'healthy' | 'unhealthy (HTTP n)' | 'unhealthy (no answer)'} from the
    `uri` results of the health checks (each item: service, url, body it must hold)."""
    states = {}
    for result in health_results:
        item = result.get("item") or {}
        status = int(result.get("status") or 0)
        ok = status == 200 and str(item.get("body", "")) in str(result.get("content") or "")
        if ok:
            states[item["service"]] = "healthy"
        elif status > 0:
            states[item["service"]] = f"unhealthy (HTTP {status})"
        else:
            states[item["service"]] = "unhealthy (no answer)"
    return states


def _json(text: object) -> dict:
    try:
        value = json.loads(str(text or "{}"))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def cnt_verify_result(
    readings: Mapping[str, Any],
    *,
    lb_status: Mapping[str, Any] | None = None,
    listened: Mapping[str, Any] | None = None,
    emitter: Mapping[str, Any] | None = None,
    socketio: object = True,
    fresh_seconds: object = 10,
) -> dict:
    """The fleet's verification result (the role's output, cnt_verify_result).

    readings: {host: the host's __cnt_verify_host, or None when it could not be read};
    lb_status: {host: cnt_lb_status}; listened: {host: the probe client's async result};
    emitter: the emitter's command result (its stdout: JSON with the LiveKit nodes found
    in Redis and the time it read them)."""
    lb_status = lb_status or {}
    listened = listened or {}
    probed = _truth(socketio)
    result = _json((emitter or {}).get("stdout")) if emitter and not emitter.get("skipped") else {}
    now = float(result.get("now") or 0)
    fresh_ips = {
        node.get("ip")
        for node in result.get("nodes") or []
        if float(node.get("updated_at") or 0) >= now - float(fresh_seconds)
    }
    hosts, versions, received, load_balancer = {}, {}, [], {}
    registered, double = 0, False
    for host, facts in readings.items():
        if not facts:
            hosts[host] = dict(UNREACHABLE)
        else:
            hosts[host] = dict(facts.get("services") or {})
            if facts.get("version"):
                versions[host] = str(facts["version"])
            double = double or _truth(facts.get("livekit_test_double"))
            if facts.get("node_ip") and facts["node_ip"] in fresh_ips:
                registered += 1
        status = lb_status.get(host) or {"in_service": False, "out": ["not read"]}
        in_service = _truth(status.get("in_service"))
        load_balancer[host] = "in service" if in_service else "OUT: " + "; ".join(status.get("out") or [])
        if _json((listened.get(host) or {}).get("stdout")).get("received"):
            received.append(host)
    expected = len(readings)
    if probed:
        socketio_part = {"expected": expected, "delivered": len(received)}
    else:
        socketio_part = {"expected": expected, "delivered": None, "checked": False, "note": NOT_CHANGED}
    nodes_checked = probed and not double
    if not probed:
        note = NOT_CHANGED
    elif double:
        note = "LiveKit TEST DOUBLE running: the multi-node check needs the real server"
    else:
        note = "fresh entries in the Redis hash nodes"
    return {
        "hosts": hosts,
        "versions": versions,
        "socketio_received": received,
        "load_balancer": load_balancer,
        "socketio": socketio_part,
        "livekit_nodes": {
            "expected": expected,
            "registered": registered if nodes_checked else None,
            "checked": nodes_checked,
            "note": note,
        },
    }


def cnt_verify_passed(result: Mapping[str, Any], socketio: object = True) -> bool:
    """Every service of every host healthy, every host in the load balancer, the event
    delivered to every host (when probed), every LiveKit node in Redis (when checked)."""
    if any(state != "healthy" for services in result["hosts"].values() for state in services.values()):
        return False
    if any(state != "in service" for state in result["load_balancer"].values()):
        return False
    if _truth(socketio) and result["socketio"]["delivered"] != result["socketio"]["expected"]:
        return False
    nodes = result["livekit_nodes"]
    return not nodes["checked"] or nodes["registered"] == nodes["expected"]


def cnt_verify_lines(result: Mapping[str, Any], report: str = "") -> list[str]:
    """The table verify prints: a line per host, hosts out of the load balancer, the
    Socket.IO and LiveKit checks (NOT CHECKED, saying why, when they were not), the report."""
    row = "{:<28} {:<24} {:<24} {:<24} {}"
    lines = [row.format("host", "backend", "livekit", "voice_agent", "version")]
    for host, s in result["hosts"].items():
        lines.append(
            row.format(
                host,
                s.get("backend", "-"),
                s.get("livekit", "-"),
                s.get("voice_agent", "-"),
                result.get("versions", {}).get(host, "-"),
            )
        )
    for host, state in result["load_balancer"].items():
        if state != "in service":
            lines.append(f"{host:<28} load balancer: {state}")
    sio = result["socketio"]
    lines.append(
        "Socket.IO through Redis: "
        + (
            f"delivered {sio['delivered']} of {sio['expected']}"
            if sio["delivered"] is not None
            else f"NOT CHECKED ({sio.get('note', '')})"
        )
    )
    nodes = result["livekit_nodes"]
    lines.append(
        "LiveKit nodes in Redis: "
        + (
            f"{nodes['registered']} of {nodes['expected']} registered"
            if nodes["checked"]
            else f"NOT CHECKED ({nodes['note']})"
        )
    )
    if report:
        lines.append(f"Report: {report}")
    return lines


def cnt_verify_out_of_service(result: Mapping[str, Any]) -> list[str]:
    """The hosts the load balancer does not have in service."""
    return [host for host, state in result["load_balancer"].items() if state != "in service"]


def _truth(value: object) -> bool:
    """A knob's truth as Ansible reads it ('false' from an extra var is false)."""
    return boolean(value, strict=False)


class FilterModule:
    """The fleet verification's decisions."""

    def filters(self):
        return {
            "cnt_verify_service_states": cnt_verify_service_states,
            "cnt_verify_result": cnt_verify_result,
            "cnt_verify_passed": cnt_verify_passed,
            "cnt_verify_lines": cnt_verify_lines,
            "cnt_verify_out_of_service": cnt_verify_out_of_service,
        }
