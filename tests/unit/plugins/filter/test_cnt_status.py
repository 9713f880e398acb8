"""plugins/filter/cnt_status.py: what status.yml flags and prints, case by case."""

from __future__ import annotations

import pytest

from plugins.loader import load

status = load("filter/cnt_status.py")

IN = {"in_service": True, "out": []}


def container(version="v2", **kwargs):
    c = {
        "exists": True,
        "state": "running",
        "health": "healthy",
        "restart_count": 0,
        "restarting": False,
        "exit_code": 0,
        "labels": {"cnt.version": version},
        "uptime_seconds": 65,
        "image_id": "sha256:0123456789abcdef0123",
    }
    return {**c, **kwargs}


def host(**containers):
    return {"containers": containers}


def flags(state, expected="v2", lb=IN, **kwargs):
    return status.cnt_status_flags(
        state, expected_version=expected, lb_status=lb, livekit_version="v1.9.1", version_parameter="/cnt/p", **kwargs
    )


def test_a_host_that_runs_what_it_should_has_no_flag():
    assert flags(host(**{"cnt-backend": container(), "cnt-livekit-server": container("v1.9.1")})) == []


@pytest.mark.parametrize(
    ("c", "flag"),
    [
        ({"exists": False}, "cnt-backend: no container"),
        (container(restart_count=5), "cnt-backend: restarting in a loop (5 restarts)"),
        (container(restarting=True, restart_count=1), "cnt-backend: restarting in a loop (1 restarts)"),
        (container(state="exited", exit_code=137), "cnt-backend: exited (exit code 137)"),
        (container(health="unhealthy (HTTP 503)"), "cnt-backend: unhealthy (HTTP 503)"),
        (container("v1"), "cnt-backend: runs v1, should run v2"),  # mixed versions
        (container(labels={}), "cnt-backend: runs no version label, should run v2"),
    ],
)
def test_each_mismatch_is_flagged(c, flag):
    assert flags(host(**{"cnt-backend": c})) == [flag]


def test_livekit_is_compared_with_the_inventorys_version_not_the_stores():
    assert flags(host(**{"cnt-livekit-server": container("v1.8")})) == [
        "cnt-livekit-server: runs v1.8, should run v1.9.1"
    ]


def test_an_empty_version_store_is_flagged_once_and_versions_are_not_compared():
    assert flags(host(**{"cnt-backend": container("v1")}), expected="") == [
        "the version store holds no version (/cnt/p)"
    ]


def test_a_host_out_of_the_load_balancer_or_not_read_is_flagged():
    assert flags(host(), lb={"in_service": False, "out": ["lb: DRAIN"]}) == ["out of the load balancer: lb: DRAIN"]
    assert flags(host(), lb=None) == ["out of the load balancer: not read"]


def fleet_result(readings):
    hosts = status.cnt_status_hosts(readings)
    return {
        "environment": "prod",
        "expected": {"version": "v2", "source": "the version store (/cnt/p)"},
        "hosts": hosts,
        "flagged": status.cnt_status_flagged(hosts),
    }


def test_an_unreachable_host_is_flagged_as_not_read():
    r = fleet_result({"a": {"containers": {}, "load_balancer": IN, "flags": []}, "b": None})
    assert r["flagged"] == {"b": ["unreachable: not read"]}
    assert status.cnt_status_failure(r) == (
        "1 of 2 hosts flagged: b (unreachable: not read). See the table above, reports/status.json."
    )


def test_the_table():
    a = {"containers": {"cnt-backend": container()}, "load_balancer": IN, "flags": [], "audit_last": "run=1 ok"}
    b = {"containers": {"cnt-backend": {"exists": False, "state": "missing", "health": "-"}}, "flags": ["x"]}
    lines = status.cnt_status_lines(fleet_result({"a": a, "b": b}))
    assert lines[0] == ("Status of prod: 2 hosts, 1 flagged. The fleet should run v2, says the version store (/cnt/p).")
    assert lines[1] == "ok      a: in service"
    assert lines[2].split() == [
        "cnt-backend",
        "v2",
        "running",
        "up",
        "1m05s",
        "restarts",
        "0",
        "healthy",
        "0123456789ab",
    ]
    assert lines[3] == "    last deploy: run=1 ok"
    assert lines[4] == "FLAGGED b: OUT of the load balancer"
    assert lines[5].split()[:3] == ["cnt-backend", "-", "missing"]
    assert lines[6] == "    ! x"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "-"), (0, "0m00s"), (59, "0m59s"), (3600, "1h00m"), (7260, "2h01m"), (90000, "1d01h")],
)
def test_uptime_is_shown_in_its_largest_units(seconds, shown):
    assert status.age(seconds) == shown
