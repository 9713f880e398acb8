"""plugins/filter/cnt_deploy.py: the decisions of a deploy.yml run, case by case."""

from __future__ import annotations

import pytest

from plugins.loader import load

deploy = load("filter/cnt_deploy.py")


def plans(*versions_before):
    """cnt_service_plans of hosts whose backend ran these versions (None: no container)."""
    return {
        f"app-{i}": {"cnt-backend": {"restart": True, "version_before": v}, "cnt-livekit-server": {"restart": False}}
        for i, v in enumerate(versions_before, 1)
    }


def host_plan(*services, drain=None, files=(), docker=(), load_balancer=(), images=()):
    changes = bool(services or files or docker or load_balancer or images)
    return {
        "services": {s: {"restart": True, "why": [f"{s} image changes"]} for s in services},
        "files": list(files),
        "docker": list(docker),
        "images": list(images),
        "load_balancer": list(load_balancer),
        "changes": changes,
        "drain": bool(services) if drain is None else drain,
    }


# --- the version a fleet revert goes back to -------------------------------------------


@pytest.mark.parametrize(
    ("before", "new", "expected"),
    [
        (("v1", "v1"), "v2", "v1"),  # the usual case
        (("v1",), "v2", "v1"),  # one host
        ((None, None), "v2", ""),  # a first deploy: no container ran before
        (("v2", "v2"), "v2", ""),  # a re-run of the same version: nothing to go back to
        (("v1", "v0", "v0"), "v2", "v0"),  # mixed versions: the one most hosts ran
        (("v1", "v0"), "v2", "v1"),  # a tie: the first host's
        (("v2", "v1"), "v2", "v1"),  # half rolled already (an interrupted run)
        ((), "v2", ""),  # no host
    ],
)
def test_previous_version_is_the_one_most_hosts_ran_before(before, new, expected):
    assert deploy.cnt_previous_version(plans(*before), new) == expected


def test_previous_version_compares_versions_as_text():
    # YAML may read a version as a number (2 not "2"): still the same version.
    assert deploy.cnt_previous_version(plans("2", "1"), 2) == "1"


def test_previous_version_ignores_hosts_without_a_plan():
    assert deploy.cnt_previous_version({"a": None, "b": {}, **plans("v1")}, "v2") == "v1"


# --- the canary ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changing", "enabled", "expected"),
    [
        ([True, True, True], True, "app-1"),
        ([False, True, True], True, "app-2"),  # the first host that changes
        ([True], True, ""),  # one host: it is its own canary
        ([True, False], True, ""),  # one host changes
        ([False, False], True, ""),  # an empty plan
        ([True, True], False, ""),  # cnt_deploy_canary=false
        ([True, True], "false", ""),  # as an extra var: a string
        ([True, True], "true", "app-1"),
    ],
)
def test_canary_is_the_first_changing_host_when_more_than_one_changes(changing, enabled, expected):
    fleet = {f"app-{i}": host_plan("cnt-backend") if c else host_plan() for i, c in enumerate(changing, 1)}
    assert deploy.cnt_canary_host(fleet, enabled) == expected


# --- the run's knobs -------------------------------------------------------------------


def test_knobs_that_are_right_have_no_problem():
    assert deploy.cnt_deploy_knob_problems("revert", 60, {"before": ["x.yml"]}) == []
    assert deploy.cnt_deploy_knob_problems("stop", "0", {}) == []


@pytest.mark.parametrize(
    ("on_failure", "bake", "hooks", "named"),
    [
        ("rollback", 60, {}, "cnt_deploy_on_failure is revert or stop (not rollback)"),
        ("revert", -1, {}, "cnt_deploy_bake_seconds"),
        ("revert", "soon", {}, "(not soon)"),
        ("revert", 0, ["x.yml"], "not a list"),
        ("revert", 0, {"after": ["x.yml"]}, "unknown points after"),
        ("revert", 0, {"success": "x.yml"}, "success must be a list"),
    ],
)
def test_each_wrong_knob_is_named(on_failure, bake, hooks, named):
    problems = deploy.cnt_deploy_knob_problems(on_failure, bake, hooks)
    assert len(problems) == 1
    assert named in problems[0]


# --- the plan printout -----------------------------------------------------------------


def plan_lines(fleet, **kwargs):
    defaults = {"run_id": "R1", "version": "v2", "environment": "prod", "previous_version": "v1"}
    return deploy.cnt_plan_lines(fleet, **{**defaults, **kwargs})


def test_plan_names_each_host_what_restarts_and_why():
    fleet = {"app-1": host_plan("cnt-backend", files=["/etc/cnt/backend.env"]), "app-2": host_plan()}
    lines = plan_lines(fleet, canary="")
    assert lines[0] == "Plan: deploy R1 of v2 to prod: 1 of 2 hosts change"
    assert lines[1].split() == [
        "app-1",
        "would",
        "restart",
        "cnt-backend,",
        "leaves",
        "the",
        "load",
        "balancer",
        "first",
    ]
    assert "      cnt-backend: cnt-backend image changes" in lines
    assert "      file changes: /etc/cnt/backend.env" in lines
    assert lines[-2].split() == ["app-2", "nothing", "to", "change"]
    assert lines[-1] == "Order: batches of 1. On failure: revert the hosts already on v2 to v1"


def test_an_empty_plan_says_nothing_changes_and_gives_no_order():
    lines = plan_lines({"app-1": host_plan(), "app-2": host_plan()})
    assert lines[0].endswith("0 of 2 hosts change")
    assert not any(line.startswith("Order:") for line in lines)


def test_a_dry_run_says_so_first():
    assert plan_lines({"a": host_plan()}, check_mode=True)[0].startswith(
        "DRY RUN (--check), nothing was changed: Plan:"
    )


def test_a_host_left_out_of_the_load_balancer_by_someone_else_is_put_back():
    fleet = {"app-1": host_plan(load_balancer=["lb: cnt_backend/app-1 is in MAINT"])}
    lines = plan_lines(fleet)
    assert lines[1].split() == ["app-1", "restarts", "nothing"]
    assert "      load balancer: lb: cnt_backend/app-1 is in MAINT (put back in service)" in lines


def test_engine_and_image_archive_changes_are_listed():
    lines = plan_lines({"a": host_plan(docker=["daemon.json changes"], images=["/srv/x.tar"], drain=True)})
    assert "      docker engine: daemon.json changes" in lines
    assert "      load image archive /srv/x.tar" in lines
    assert lines[1].split() == ["a", "restarts", "nothing,", "leaves", "the", "load", "balancer", "first"]


def test_the_canary_and_the_bake_are_in_the_order():
    fleet = {"a": host_plan("cnt-backend"), "b": host_plan("cnt-backend")}
    order = plan_lines(fleet, canary="a", bake_seconds=60, serial="25%")[-1]
    assert order == (
        "Order: canary a first, verified with the fleet, baked 60 s; then batches of 25%. "
        "On failure: revert the hosts already on v2 to v1"
    )


@pytest.mark.parametrize(
    ("on_failure", "previous", "says"),
    [
        ("stop", "v1", "stop (no revert: cnt_deploy_on_failure=stop)"),
        ("revert", "", "stop (no revert: no previous version on the hosts)"),
    ],
)
def test_the_plan_says_when_a_failure_cannot_revert(on_failure, previous, says):
    lines = plan_lines({"a": host_plan("cnt-backend")}, on_failure=on_failure, previous_version=previous)
    assert lines[-1].endswith("On failure: " + says)


def test_hosts_auto_scaling_left_out_are_named_with_their_state():
    lines = plan_lines({"a": host_plan()}, not_in_service={"b": "Terminating:Wait", "c": "Pending"})
    assert "Left out, not InService in Auto Scaling: b (Terminating:Wait), c (Pending)" in lines


# --- the canary's judgement ------------------------------------------------------------


def verified(hosts, received, out=()):
    return {
        "hosts": hosts,
        "load_balancer": {h: ("OUT: drained" if h in out else "in service") for h in hosts},
        "socketio_received": list(received),
    }


HEALTHY = {"backend": "healthy", "livekit": "healthy", "voice_agent": "healthy"}
SICK = {**HEALTHY, "voice_agent": "unhealthy (HTTP 503)"}


@pytest.mark.parametrize(
    ("hosts", "received", "out", "socketio", "ok"),
    [
        ({"c": HEALTHY, "o": HEALTHY}, ["c", "o"], (), True, True),
        ({"c": HEALTHY, "o": HEALTHY}, ["c"], (), True, False),  # the event did not reach the old version
        ({"c": HEALTHY, "o": HEALTHY}, ["o"], (), True, False),  # nor the canary
        ({"c": SICK, "o": HEALTHY}, ["c", "o"], (), True, False),  # one service unhealthy
        ({"c": HEALTHY, "o": HEALTHY}, ["c", "o"], ("c",), True, False),  # out of the load balancer
        ({"c": HEALTHY, "o": SICK}, ["c", "o"], ("o",), True, True),  # the others are not judged
        ({"c": HEALTHY, "o": {**HEALTHY, "backend": "unreachable"}}, ["c"], (), True, True),  # no healthy old host
        ({"c": HEALTHY}, ["c"], (), True, True),  # the canary alone
        ({"c": HEALTHY, "o": HEALTHY}, [], (), False, True),  # after the bake: Socket.IO not probed
        ({"o": HEALTHY}, ["o"], (), True, False),  # the canary was not read at all
    ],
)
def test_canary_judgement(hosts, received, out, socketio, ok):
    assert deploy.cnt_canary_ok(verified(hosts, received, out), "c", socketio) is ok


# --- whether the rollout stops ----------------------------------------------------------


@pytest.mark.parametrize(
    ("failed", "changing", "canary", "max_fail", "stops"),
    [
        ([], ["a", "b"], "a", 0, False),
        (["a"], ["a", "b", "c"], "a", 100, True),  # the canary failed: always
        (["b"], ["a", "b", "c"], "", 0, True),  # the first failure at 0 %
        (["b"], ["a", "b", "c", "d"], "", 25, False),  # 25 % of 4 hosts: one may fail
        (["b", "c"], ["a", "b", "c", "d"], "", 25, True),
        (["a", "b"], ["a", "b"], "", "100", False),  # every host failing, at 100 %
        (["a", "b"], ["a", "b"], "", 0, True),  # every host failing
    ],
)
def test_rollout_stops(failed, changing, canary, max_fail, stops):
    assert deploy.cnt_rollout_stopped(failed, changing, canary, max_fail) is stops


def test_canary_failure_names_the_report_before_and_after_the_bake():
    assert deploy.cnt_canary_failure("a", "v2") == (
        "The canary a with v2 failed its verification (see the table above, reports/verify-canary.json)."
    )
    assert "(after the bake, see the table above, reports/verify-bake.json)" in deploy.cnt_canary_failure(
        "a", "v2", baked=True
    )


# --- the summary and the failure message -----------------------------------------------


def summary(**kwargs):
    fleet = {
        "a": {"cnt-backend": {"restart": True}, "cnt-voice-agent": {"restart": True}},
        "b": {"cnt-backend": {"restart": False}},
        "c": {"cnt-backend": {"restart": True}},
        "d": {},
    }
    return deploy.cnt_summary_lines(fleet, title="Deploy R1 of v2 to prod", previous_version="v1", **kwargs)


def outcome(lines, host):
    return " ".join(next(line for line in lines[1:] if line.split()[0] == host).split()[1:])


def test_summary_of_a_verified_deploy():
    lines = summary(ok=True, recorded=True, pinned="commit abc pinned", rolled=["a", "b"], changing=["a", "b"])
    assert lines[0] == "Deploy R1 of v2 to prod: done, verified; version recorded, commit abc pinned"
    assert outcome(lines, "a") == "restarted, healthy: cnt-backend, cnt-voice-agent"
    assert outcome(lines, "b") == "reconciled (see the plan)"
    assert outcome(lines, "d") == "nothing to change"


def test_summary_of_a_failed_deploy_that_reverted():
    lines = summary(ok=False, failed=["c"], rolled=["a"], reverted=["a"], changing=["a", "b", "c"])
    assert lines[0] == "Deploy R1 of v2 to prod: FAILED; version store unchanged"
    assert outcome(lines, "a") == "reverted to v1"
    assert outcome(lines, "b") == "not rolled (the rollout stopped)"
    assert outcome(lines, "c") == "FAILED, see below"


def test_summary_of_every_host_failing():
    lines = summary(ok=False, failed=["a", "b", "c", "d"], changing=["a", "b", "c", "d"])
    assert [outcome(lines, h) for h in "abcd"] == ["FAILED, see below"] * 4


def test_summary_without_a_version_store_or_on_a_limited_run():
    assert summary(ok=True, version_store="none")[0] == "Deploy R1 of v2 to prod: done, verified"
    assert summary(ok=True, recorded=False)[0].endswith("; version store unchanged")
    assert summary(ok=True, recorded=True)[0].endswith("; version recorded, no commit pinned")


def test_failure_message_with_hosts_failing_and_a_revert():
    message = deploy.cnt_failure_message(["Deploying v2 to a failed: x."], reverted=["b"], previous_version="v1")
    assert message == "Deploying v2 to a failed: x. Reverted to v1: b. The version store is unchanged."


def test_failure_message_when_only_the_verify_failed_and_nothing_reverted():
    message = deploy.cnt_failure_message([], on_failure="stop", rolled_any=True)
    assert message == (
        "The fleet failed its verification after the rollout (see the table above). "
        "Nothing was reverted (cnt_deploy_on_failure=stop). The version store is unchanged."
    )


def test_fleet_facts_fills_in_hosts_without_the_fact():
    hostvars = {"a": {"x": 1}, "b": {}}
    assert deploy.cnt_fleet_facts(["a", "b", "c"], hostvars, "x", 0) == {"a": 1, "b": 0, "c": 0}


# --- one host's roll --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plans", "result"),
    [
        ({"cnt-backend": {"restart": True}, "cnt-voice-agent": {"restart": False}}, "deployed"),
        ({"cnt-backend": {"restart": False}}, "reconciled"),  # files or the load balancer put right
        ({}, "reconciled"),
        (None, "reconciled"),
    ],
)
def test_a_roll_is_deployed_only_when_a_container_restarted(plans, result):
    assert deploy.cnt_roll_result(plans) == result


@pytest.mark.parametrize(
    ("action", "verb"),
    [("deploy", "Deploying"), ("rollback", "Deploying"), ("revert", "Reverting"), ("pull", "Configuring")],
)
def test_a_host_failure_names_what_was_done_to_which_host(action, verb):
    assert (
        deploy.cnt_host_failure("boom", action=action, version="v2", host="app-1") == f"{verb} v2 to app-1 failed: boom"
    )


def test_a_host_failure_says_the_host_stays_out_of_the_load_balancer_but_not_in_brief():
    full = deploy.cnt_host_failure("line 1\nline 2", version="v2", host="a", out_of_service=True)
    assert full == "Deploying v2 to a failed (the host stays out of the load balancer): line 1\nline 2"
    brief = deploy.cnt_host_failure("line 1\n  line 2", version="v2", host="a", out_of_service=True, brief=True)
    assert brief == "Deploying v2 to a failed: line 1 line 2"


def test_a_host_failure_without_a_message_points_at_the_task():
    assert deploy.cnt_host_failure(None, version="v2", host="a").endswith("failed: see the task above")
