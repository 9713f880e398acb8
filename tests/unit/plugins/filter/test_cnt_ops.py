"""plugins/filter/cnt_ops.py: logs merge, load balancer state, pruning, known_hosts,
the Docker mount, apt key fingerprints, a webhook error masked."""

from __future__ import annotations

import pytest

from plugins.loader import load

ops = load("filter/cnt_ops.py")

# --- logs.yml ---------------------------------------------------------------------------


def logs(*lines, rc=0):
    return {"rc": rc, "stdout_lines": list(lines), "stderr_lines": []}


def test_logs_are_merged_in_time_order_each_line_naming_its_host():
    merged = ops.cnt_logs_merge(
        {"a": logs("2026-01-01T00:00:02Z a2", "2026-01-01T00:00:00Z a0"), "b": logs("2026-01-01T00:00:01Z b1")},
        container="cnt-backend",
    )
    assert merged == ["a | 2026-01-01T00:00:00Z a0", "b | 2026-01-01T00:00:01Z b1", "a | 2026-01-01T00:00:02Z a2"]


def test_logs_keep_the_last_lines_after_grep():
    result = {"a": logs(*(f"2026-01-01T00:00:0{i}Z {'error' if i % 2 else 'ok'} {i}" for i in range(8)))}
    assert ops.cnt_logs_merge(result, container="c", grep="err", lines=2) == [
        "a | 2026-01-01T00:00:05Z error 5",
        "a | 2026-01-01T00:00:07Z error 7",
    ]


def test_a_host_without_the_container_says_so_and_stderr_counts():
    result = {"a": logs(rc=1), "b": {"rc": 0, "stdout_lines": [], "stderr_lines": ["2026-01-01T00:00:00Z warn"]}}
    assert ops.cnt_logs_merge(result, container="cnt-voice-agent") == [
        "a |  (no container cnt-voice-agent)",
        "b | 2026-01-01T00:00:00Z warn",
    ]


# --- the load balancer ------------------------------------------------------------------


def row(backend, server, state):
    return {"pxname": backend, "svname": server, "status": state}


@pytest.mark.parametrize(
    ("rows", "out"),
    [
        ([row("cnt_backend", "app-1", "UP"), row("cnt_livekit", "app-1", "DOWN")], []),  # health is verify's part
        (
            [row("cnt_backend", "app-1", "MAINT"), row("cnt_livekit", "app-1", "UP")],
            ["lb: cnt_backend/app-1 is in MAINT"],
        ),
        (
            [row("cnt_backend", "app-1", "DRAIN"), row("cnt_livekit", "app-1", "UP")],
            ["lb: cnt_backend/app-1 is in DRAIN"],
        ),
        ([row("cnt_backend", "app-1", "UP")], ["lb: cnt_livekit/app-1 is not configured"]),
        (
            [row("cnt_backend", "app-2", "UP"), row("cnt_livekit", "app-1", "UP")],
            ["lb: cnt_backend/app-1 is not configured"],
        ),
    ],
)
def test_haproxy_in_service(rows, out):
    assert ops.cnt_lb_haproxy_out({"lb": rows}, ["cnt_backend", "cnt_livekit"], "app-1") == out


def test_haproxy_every_load_balancer_host_must_have_it():
    up = [row("cnt_backend", "app-1", "UP")]
    down = [row("cnt_backend", "app-1", "MAINT (via lb1)")]
    assert ops.cnt_lb_haproxy_out({"lb1": up, "lb2": down}, ["cnt_backend"], "app-1") == [
        "lb2: cnt_backend/app-1 is in MAINT (via lb1)"
    ]


def group(name, *states):
    arn = f"arn:aws:elasticloadbalancing:eu-west-2:1:targetgroup/{name}/abc"
    return {"target_group_arn": arn, "targets": [{"target_health": {"state": s}} for s in states]}


@pytest.mark.parametrize(
    ("groups", "out"),
    [
        ([group("web", "healthy")], []),
        ([group("web", "initial")], []),
        ([group("web", "draining")], ["web: the instance is draining"]),
        ([group("web", "unused")], ["web: the instance is unused"]),
        ([group("other", "healthy")], ["web: the instance is not registered"]),
        ([], ["web: the instance is not registered"]),
    ],
)
def test_alb_in_service(groups, out):
    assert ops.cnt_lb_alb_out(groups, ["web"]) == out


def test_alb_target_group_by_arn():
    g = group("web", "healthy")
    assert ops.cnt_lb_alb_out([g], [g["target_group_arn"]]) == []


# --- pruning ----------------------------------------------------------------------------


def test_versions_to_keep_are_those_in_play_and_the_last_deployed():
    deployed = ["v1", "v2", "v3", "v2", "v4"]  # oldest first
    assert ops.cnt_versions_to_keep(deployed, current=["v5", "v5"], count=2) == ["v5", "v4", "v2"]
    assert ops.cnt_versions_to_keep([], current=["", "v1"], count=3) == ["v1"]


def test_prunable_images_spare_those_in_use_and_kept():
    images = [
        {"Id": "i1", "RepoTags": ["r/cnt-backend:v1", "r/cnt-backend:v4"], "Size": 10},  # one tag kept
        {"Id": "i2", "RepoTags": ["r:5000/cnt-backend:v0"], "Size": 20},  # wholly old
        {"Id": "i3", "RepoTags": ["r/cnt-backend:v0"], "Size": 30},  # in use
        {"Id": "i4", "RepoTags": None, "Size": 40},  # dangling: not ours to judge
    ]
    assert ops.cnt_prunable_images(images, in_use=["i3"], keep=["v4"]) == [
        {"tags": ["r/cnt-backend:v1"], "whole": False, "size": 10},
        {"tags": ["r:5000/cnt-backend:v0"], "whole": True, "size": 20},
    ]


# --- known_hosts, mounts, apt keys, webhook errors --------------------------------------


def test_known_hosts_by_instance_id_else_by_name():
    published = {"i-1": "ssh-ed25519 AAA1\necdsa AAA2", "app-2": "ssh-ed25519 BBB"}
    keys = ops.cnt_known_hosts_keys(["app-1", "app-2", "app-3"], published, {"app-1": "i-1", "app-3": "i-3"})
    assert keys == {"app-1": "ssh-ed25519 AAA1\necdsa AAA2", "app-2": "ssh-ed25519 BBB"}
    assert ops.cnt_known_hosts_lines(keys, {"app-1": "10.0.0.1"}) == [
        "10.0.0.1 ssh-ed25519 AAA1",
        "10.0.0.1 ecdsa AAA2",
        "app-2 ssh-ed25519 BBB",
    ]


@pytest.mark.parametrize(
    ("mounts", "mount"),
    [
        (["/", "/var"], "/var"),
        (["/", "/var/lib/docker"], "/var/lib/docker"),
        (["/", "/var/lib/doc"], "/"),  # a prefix of the name is not a parent
        (["/srv"], ""),
    ],
)
def test_the_mount_holding_dockers_data(mounts, mount):
    found = ops.cnt_mount_of([{"mount": m, "size_available": 1} for m in mounts], "/var/lib/docker")
    assert found["mount"] == mount


def test_only_primary_key_fingerprints():
    lines = ["pub:-:4096:1:X:::::", "fpr:::::::::PRIMARY:", "sub:-:4096:1:Y:::::", "fpr:::::::::SUBKEY:"]
    assert ops.cnt_gpg_fingerprints(lines) == ["PRIMARY"]


def test_a_webhook_error_never_shows_its_url_or_its_parts():
    url = "https://chat.example/hooks/secret-token-123?key=abcd"
    message = (
        f"Status code was -1: Request failed: <urlopen error to {url}> at chat.example path /hooks/secret-token-123"
    )
    hidden = ops.cnt_hide_url(message, url)
    assert "secret-token-123" not in hidden and "abcd" not in hidden and "chat.example" not in hidden
    assert hidden.startswith("Status code was -1: Request failed:")
    assert len(ops.cnt_hide_url("x" * 500, url)) == 200
