"""The decisions of a deploy.yml run, as plain functions: which version a fleet revert goes
back to, which host is the canary, what the plan and the summary print, whether the canary
passed and whether the rollout stops.

deploy.yml says what runs in which order; these functions say which host, which version,
pass or fail, and what to print. Each takes plain data (the hosts' published plans, the
verify result) so tests/unit/plugins/filter/test_cnt_deploy.py can try every case a fleet
test never reaches: one host, every host failing, mixed versions, no previous version,
an empty plan, a host left out of the load balancer by someone else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from ansible.module_utils.parsing.convert_bool import boolean

CONTAINERS = ("cnt-backend", "cnt-livekit-server", "cnt-voice-agent")
HOOK_POINTS = ("before", "after_host", "success", "failure", "rollback")


def cnt_fleet_facts(hosts: Iterable[str], hostvars: Mapping[str, Any], name: str, default: Any = None) -> dict:
    """{host: hostvars[host][name]} for every host, `default` where a host has none.

    What a play hands a decision: one fact of every host, in the order given (inventory
    order, as the events and the summary list hosts)."""
    out = {}
    for host in hosts:
        out[host] = (hostvars.get(host) or {}).get(name, default)
    return out


def cnt_previous_version(service_plans: Mapping[str, Any], version: object) -> str:
    """The version most hosts' backend ran before this run, other than `version`: what a
    fleet revert goes back to. '' when no host ran another one (a first deploy).

    Read from the containers the plan found (cnt_service_plans of each host), not from a
    record: the fleet is what runs. A tie goes to the version of the first host in order.
    """
    seen: Counter[str] = Counter()
    for plans in service_plans.values():
        before = ((plans or {}).get("cnt-backend") or {}).get("version_before")
        if before is not None and str(before) != str(version):
            seen[str(before)] += 1
    if not seen:
        return ""
    # Counter.most_common keeps first-seen order among equal counts.
    return seen.most_common(1)[0][0]


def cnt_changing_hosts(host_plans: Mapping[str, Any]) -> list[str]:
    """The hosts whose plan changes something, in the order given."""
    return [host for host, plan in host_plans.items() if (plan or {}).get("changes")]


def cnt_canary_host(host_plans: Mapping[str, Any], enabled: object = True) -> str:
    """The canary: the first host whose plan changes something, when the canary is on
    and more than one host changes ('' otherwise: one host is its own canary)."""
    changing = cnt_changing_hosts(host_plans)
    return changing[0] if _truth(enabled) and len(changing) > 1 else ""


def cnt_deploy_knob_problems(on_failure: object, bake_seconds: object, hooks: object) -> list[str]:
    """Why the run's knobs are wrong, or [] (deploy.yml stops before the plan prints)."""
    problems = []
    if on_failure not in ("revert", "stop"):
        problems.append(f"cnt_deploy_on_failure is revert or stop (not {on_failure})")
    try:
        if int(str(bake_seconds)) < 0:
            raise ValueError
    except ValueError:
        problems.append(f"cnt_deploy_bake_seconds is a number of seconds, 0 or more (not {bake_seconds})")
    if not isinstance(hooks, Mapping):
        problems.append(f"cnt_deploy_hooks maps hook points to lists of tasks files (not a {type(hooks).__name__})")
    else:
        unknown = sorted(str(k) for k in hooks if k not in HOOK_POINTS)
        if unknown:
            known = ", ".join(HOOK_POINTS)
            problems.append(f"cnt_deploy_hooks has unknown points {', '.join(unknown)} (known: {known})")
        bad = sorted(str(k) for k, v in hooks.items() if k in HOOK_POINTS and not isinstance(v, list))
        if bad:
            problems.append(f"cnt_deploy_hooks: {', '.join(bad)} must be a list of tasks files")
    return problems


def _host_line(host: str, plan: Mapping[str, Any]) -> str:
    if not plan.get("changes"):
        what = "nothing to change"
    else:
        services = list(plan.get("services") or {})
        what = ("would restart " + ", ".join(services)) if services else "restarts nothing"
        if plan.get("drain"):
            what += ", leaves the load balancer first"
    return f"  {host:<28} {what}"


def cnt_plan_lines(
    host_plans: Mapping[str, Any],
    *,
    action: str = "deploy",
    run_id: str = "",
    version: object = "",
    environment: str = "",
    check_mode: bool = False,
    not_in_service: Mapping[str, Any] | None = None,
    canary: str = "",
    bake_seconds: object = 0,
    serial: object = 1,
    on_failure: str = "revert",
    previous_version: str = "",
) -> list[str]:
    """The plan deploy.yml prints before anything changes: a line per host (what would
    restart, whether it leaves the load balancer), each reason under it, the hosts Auto
    Scaling left out, then the order of the rollout and what a failure does."""
    changing = cnt_changing_hosts(host_plans)
    title = (
        ("DRY RUN (--check), nothing was changed: " if check_mode else "")
        + f"Plan: {action} {run_id} of {version} to {environment}: "
        + f"{len(changing)} of {len(host_plans)} hosts change"
    )
    lines = [title]
    for host, plan in host_plans.items():
        plan = plan or {}
        lines.append(_host_line(host, plan))
        for name, service in (plan.get("services") or {}).items():
            lines.append(f"      {name}: " + ", ".join(str(w) for w in service.get("why") or []))
        lines += [f"      docker engine: {item}" for item in plan.get("docker") or []]
        lines += [f"      load image archive {item}" for item in plan.get("images") or []]
        lines += [f"      file changes: {item}" for item in plan.get("files") or []]
        lines += [f"      load balancer: {item} (put back in service)" for item in plan.get("load_balancer") or []]
    if not_in_service:
        lines.append(
            "Left out, not InService in Auto Scaling: "
            + ", ".join(f"{host} ({state})" for host, state in not_in_service.items())
        )
    if changing:
        order = f"canary {canary} first, verified with the fleet, baked {bake_seconds} s; then " if canary else ""
        if on_failure == "revert" and previous_version:
            failure = f"revert the hosts already on {version} to {previous_version}"
        elif on_failure != "revert":
            failure = f"stop (no revert: cnt_deploy_on_failure={on_failure})"
        else:
            failure = "stop (no revert: no previous version on the hosts)"
        lines.append(f"Order: {order}batches of {serial}. On failure: {failure}")
    return lines


def cnt_canary_ok(verify_result: Mapping[str, Any], canary: str, socketio: object = True) -> bool:
    """The canary passed: every service of it healthy, in the load balancer, and (when
    Socket.IO was probed) the event through Redis reached it and reached a host still on
    the old version, if any of those has a healthy backend. The other hosts are not
    judged: the rollout repairs them."""
    hosts = verify_result.get("hosts") or {}
    if canary not in hosts:
        return False
    if any(state != "healthy" for state in hosts[canary].values()):
        return False
    if (verify_result.get("load_balancer") or {}).get(canary) != "in service":
        return False
    if not _truth(socketio):
        return True
    received = verify_result.get("socketio_received") or []
    others = [h for h, s in hosts.items() if h != canary and s.get("backend") == "healthy"]
    return canary in received and (not others or any(h in received for h in others))


def cnt_rollout_stopped(
    failed: Iterable[str], changing: Iterable[str], canary: str = "", max_fail_percentage: object = 0
) -> bool:
    """The rollout stops: the canary failed, or more than cnt_deploy_max_fail_percentage
    of the changing hosts did (0 %: the first failure stops it)."""
    failed = list(failed)
    if canary and canary in failed:
        return True
    total = len(list(changing))
    return len(failed) * 100 > int(str(max_fail_percentage)) * total


def cnt_roll_result(service_plans: Mapping[str, Any] | None) -> str:
    """What a host's roll did, for its audit line and its hooks: deployed when a
    container restarted, reconciled when the host was only put right (files, the load
    balancer) or nothing changed."""
    restarted = any((plan or {}).get("restart") for plan in (service_plans or {}).values())
    return "deployed" if restarted else "reconciled"


VERBS = {"revert": "Reverting", "pull": "Configuring"}


def cnt_host_failure(
    message: object,
    *,
    action: str = "deploy",
    version: object = "",
    host: str = "",
    out_of_service: object = False,
    brief: bool = False,
) -> str:
    """Why a host's roll failed: 'Deploying v2 to app-1 failed: ...'. `brief` folds the
    message onto one line (a notification's), and says nothing of the load balancer."""
    text = str(message if message not in (None, "") else "see the task above")
    if brief:
        text = " ".join(text.split())
    stays_out = " (the host stays out of the load balancer)" if _truth(out_of_service) and not brief else ""
    return f"{VERBS.get(action, 'Deploying')} {version} to {host} failed{stays_out}: {text}"


def cnt_canary_failure(canary: str, version: object, baked: bool = False) -> str:
    """Why the rollout stopped after the canary (the run's failure message)."""
    when, report = ("after the bake, ", "bake") if baked else ("", "canary")
    return (
        f"The canary {canary} with {version} failed its verification "
        f"({when}see the table above, reports/verify-{report}.json)."
    )


def cnt_host_outcome(
    host: str,
    *,
    failed: Iterable[str] = (),
    reverted: Iterable[str] = (),
    rolled: Iterable[str] = (),
    changing: Iterable[str] = (),
    restarted: Iterable[str] = (),
    previous_version: str = "",
) -> str:
    """What happened to one host, for the summary."""
    if host in failed:
        return "FAILED, see below"
    if host in reverted:
        return f"reverted to {previous_version}"
    restarted = list(restarted)
    if host in rolled:
        return ("restarted, healthy: " + ", ".join(restarted)) if restarted else "reconciled (see the plan)"
    if host in changing:
        return "not rolled (the rollout stopped)"
    return "nothing to change"


def cnt_summary_lines(
    service_plans: Mapping[str, Any],
    *,
    title: str,
    ok: bool,
    version_store: str = "ssm",
    recorded: bool = False,
    pinned: str = "",
    failed: Iterable[str] = (),
    reverted: Iterable[str] = (),
    rolled: Iterable[str] = (),
    changing: Iterable[str] = (),
    previous_version: str = "",
) -> list[str]:
    """The summary deploy.yml prints last: the run's result and the version store's
    state, then a line per host (in the order of `service_plans`)."""
    failed, reverted, rolled, changing = list(failed), list(reverted), list(rolled), list(changing)
    if version_store == "none":
        store = ""
    elif ok and recorded:
        store = "; version recorded, " + (pinned or "no commit pinned")
    else:
        store = "; version store unchanged"
    lines = [f"{title}: " + ("done, verified" if ok else "FAILED") + store]
    for host, plans in service_plans.items():
        restarted = [name for name, plan in (plans or {}).items() if (plan or {}).get("restart")]
        outcome = cnt_host_outcome(
            host,
            failed=failed,
            reverted=reverted,
            rolled=rolled,
            changing=changing,
            restarted=restarted,
            previous_version=previous_version,
        )
        lines.append(f"  {host:<28} {outcome}")
    return lines


def cnt_failure_message(
    failures: Iterable[str],
    *,
    reverted: Iterable[str] = (),
    previous_version: str = "",
    on_failure: str = "revert",
    rolled_any: bool = False,
) -> str:
    """The message a failed run ends with: each host's reason (or the verify's), what was
    reverted, and that the version store is unchanged."""
    failures = [str(f) for f in failures if f]
    reverted = list(reverted)
    parts = failures or ["The fleet failed its verification after the rollout (see the table above)."]
    if reverted:
        parts.append(f"Reverted to {previous_version}: {', '.join(reverted)}.")
    elif rolled_any:
        parts.append(f"Nothing was reverted (cnt_deploy_on_failure={on_failure}).")
    parts.append("The version store is unchanged.")
    return " ".join(parts)


def _truth(value: object) -> bool:
    """A knob's truth as Ansible reads it ('false' from an extra var is false)."""
    return boolean(value, strict=False)


class FilterModule:
    """The deploy run's decisions."""

    def filters(self):
        return {
            "cnt_fleet_facts": cnt_fleet_facts,
            "cnt_previous_version": cnt_previous_version,
            "cnt_changing_hosts": cnt_changing_hosts,
            "cnt_canary_host": cnt_canary_host,
            "cnt_deploy_knob_problems": cnt_deploy_knob_problems,
            "cnt_plan_lines": cnt_plan_lines,
            "cnt_canary_ok": cnt_canary_ok,
            "cnt_rollout_stopped": cnt_rollout_stopped,
            "cnt_canary_failure": cnt_canary_failure,
            "cnt_roll_result": cnt_roll_result,
            "cnt_host_failure": cnt_host_failure,
            "cnt_summary_lines": cnt_summary_lines,
            "cnt_failure_message": cnt_failure_message,
        }
