"""The decisions of status.yml (roles/cnt_status): what is flagged on a host against what
should run, the fleet's report, the table printed and the failure message.

roles/cnt_status/files/host_status.py reads a host (containers, health, audit log); the
role reads the load balancer and the version store; these functions judge and print.
Tested in tests/unit/plugins/filter/test_cnt_status.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

NOT_READ = {"flags": ["unreachable: not read"]}
LB_NOT_READ = {"in_service": False, "out": ["not read"]}


def cnt_status_flags(
    state: Mapping[str, Any],
    *,
    expected_version: object,
    lb_status: Mapping[str, Any] | None = None,
    app_containers: Iterable[str] = ("cnt-backend", "cnt-voice-agent"),
    livekit_version: object = "",
    max_restarts: object = 3,
    version_parameter: str = "",
) -> list[str]:
    """Everything on one host that differs from what should run: a missing container,
    one restarting in a loop, stopped or unhealthy, one running another version than the
    store records (LiveKit: the inventory's), the host out of the load balancer."""
    flags = []
    expected = str(expected_version or "")
    app_containers = list(app_containers)
    if not expected:
        flags.append(f"the version store holds no version ({version_parameter})")
    for name, c in (state.get("containers") or {}).items():
        should = expected if name in app_containers else str(livekit_version or "")
        if not c.get("exists"):
            flags.append(f"{name}: no container")
            continue
        restarts = int(c.get("restart_count") or 0)
        if c.get("restarting") or restarts > int(max_restarts):
            flags.append(f"{name}: restarting in a loop ({restarts} restarts)")
        elif c.get("state") != "running":
            flags.append(f"{name}: {c.get('state')} (exit code {c.get('exit_code')})")
        elif c.get("health") != "healthy":
            flags.append(f"{name}: {c.get('health')}")
        running = (c.get("labels") or {}).get("cnt.version", "")
        if should and running != should:
            flags.append(f"{name}: runs {running or 'no version label'}, should run {should}")
    lb = lb_status or LB_NOT_READ
    if not lb.get("in_service"):
        flags.append("out of the load balancer: " + "; ".join(lb.get("out") or ["not read"]))
    return flags


def cnt_status_hosts(readings: Mapping[str, Any]) -> dict:
    """{host: its status, or 'unreachable: not read' when it has none}."""
    return {host: dict(reading) if reading else dict(NOT_READ) for host, reading in readings.items()}


def cnt_status_flagged(hosts: Mapping[str, Any]) -> dict:
    """{host: flags} for the hosts with any."""
    return {host: list(h["flags"]) for host, h in hosts.items() if h.get("flags")}


def age(seconds: object) -> str:
    """An uptime as the table shows it: 4m05s, 2h07m, 3d04h; '-' when unknown."""
    if seconds is None or seconds == "":
        return "-"
    s = int(float(str(seconds)))
    if s >= 86400:
        return f"{s // 86400}d{s % 86400 // 3600:02d}h"
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s"


def cnt_status_lines(result: Mapping[str, Any]) -> list[str]:
    """The fleet at a glance: a header, then per host its load balancer state, a row per
    container (version, state, uptime, restarts, health, image), the last deploy and
    every flag."""
    expected = result.get("expected") or {}
    lines = [
        f"Status of {result.get('environment')}: {len(result['hosts'])} hosts, {len(result['flagged'])} flagged. "
        f"The fleet should run {expected.get('version') or '(none recorded)'}, says {expected.get('source')}."
    ]
    for host, h in result["hosts"].items():
        in_service = (h.get("load_balancer") or {}).get("in_service", False)
        lines.append(
            ("FLAGGED " if h.get("flags") else "ok      ")
            + f"{host}: "
            + ("in service" if in_service else "OUT of the load balancer")
        )
        for name, c in (h.get("containers") or {}).items():
            version = (c.get("labels") or {}).get("cnt.version", "-") if c.get("exists") else "-"
            restarts = c.get("restart_count", "-")
            lines.append(
                f"    {name:<20} {version:<12} {c.get('state')!s:<10} up {age(c.get('uptime_seconds')):<7} "
                f"restarts {restarts!s:<3} {c.get('health')!s:<24} {(c.get('image_id') or '')[7:19]}"
            )
        if "audit_last" in h:
            lines.append("    last deploy: " + (h["audit_last"] or "(none)"))
        lines += [f"    ! {flag}" for flag in h.get("flags") or []]
    return lines


def cnt_status_failure(result: Mapping[str, Any]) -> str:
    """The message of a run that flagged anything (a cron check's)."""
    flagged = result["flagged"]
    hosts = "; ".join(f"{host} ({'; '.join(flags)})" for host, flags in flagged.items())
    return f"{len(flagged)} of {len(result['hosts'])} hosts flagged: {hosts}. See the table above, reports/status.json."


class FilterModule:
    """status.yml's decisions."""

    def filters(self):
        return {
            "cnt_status_flags": cnt_status_flags,
            "cnt_status_hosts": cnt_status_hosts,
            "cnt_status_flagged": cnt_status_flagged,
            "cnt_status_lines": cnt_status_lines,
            "cnt_status_failure": cnt_status_failure,
        }
