"""Roles hand each other values in the open: every fact a role sets that another role or a
playbook reads is declared in that role's defaults/main.yml, under its "Outputs" header;
and nothing branches on a task's name (ansible_failed_task.name) to learn what failed."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

_spec = importlib.util.spec_from_file_location("cnt_docs_for_outputs", ROOT / "tools/docs.py")
docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(docs)


def set_facts(node: object) -> set[str]:
    """The names every set_fact in a parsed tasks file sets."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("ansible.builtin.set_fact", "set_fact") and isinstance(value, dict):
                found |= {name for name in value if name != "cacheable"}
            found |= set_facts(value)
    elif isinstance(node, list):
        for item in node:
            found |= set_facts(item)
    return found


def sources() -> dict[Path, str]:
    files = [*ROOT.glob("roles/*/**/*.yml"), *ROOT.glob("playbooks/**/*.yml"), ROOT / "local.yml"]
    return {path: path.read_text() for path in files}


def declared(role: str) -> set[str]:
    """The names listed under the Outputs header of the role's defaults (read as
    `make docs` reads them for the role's README)."""
    return {name.strip() for names, _ in docs.role_outputs(ROOT / "roles" / role) for name in names.split(",")}


def cross_role_facts() -> dict[str, dict[str, list[str]]]:
    """{fact: {setting role: [readers outside it]}} for the facts read outside their role."""
    texts = sources()
    out: dict[str, dict[str, list[str]]] = {}
    for tasks in ROOT.glob("roles/*/tasks/*.yml"):
        role = tasks.parts[-3]
        for fact in set_facts(yaml.safe_load(tasks.read_text()) or []):
            if fact.startswith("__"):
                continue
            readers = sorted(
                str(path.relative_to(ROOT))
                for path, text in texts.items()
                if not path.is_relative_to(ROOT / "roles" / role) and re.search(rf"\b{re.escape(fact)}\b", text)
            )
            if readers:
                out.setdefault(fact, {}).setdefault(role, readers)
    return out


CROSS = cross_role_facts()


def test_the_detection_finds_the_known_hand_overs():
    # A check that found nothing would pass on anything.
    assert {"cnt_host_plan", "cnt_lb_status", "cnt_service_plans", "cnt_roll_result"} <= set(CROSS)


@pytest.mark.parametrize("fact", sorted(CROSS))
def test_every_fact_read_outside_its_role_is_a_declared_output(fact):
    setters = CROSS[fact]
    names = {name for role in setters for name in declared(role)}
    # "cnt_deploy_*" declares every knob of a role that publishes its inputs.
    assert fact in names or any(name.endswith("*") and fact.startswith(name[:-1]) for name in names), (
        f"{fact} is set by {', '.join(setters)} and read in {sorted({r for rs in setters.values() for r in rs})}: "
        f"declare it under '{docs.OUTPUTS}' in the defaults of the role that owns it"
    )


def test_nothing_branches_on_a_task_name():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path, text in sources().items()
        for number, line in enumerate(text.splitlines(), 1)
        if re.search(r"ansible_failed_task\.name[^}]*\b(in|search|match|==|!=)\b", line)
        or re.search(r"['\"][^'\"]*\|['\"] in ansible_failed_task\.name", line)
    ]
    assert offenders == []


def test_every_action_cnt_roll_takes_is_one_cnt_rollouts_audit_accepts():
    """cnt_roll hands its action to cnt_rollout's lock and audit line: an action the
    audit's spec refuses fails every roll with it (a first boot's 'pull' did)."""

    def choices(role: str, entry: str, option: str) -> list[str]:
        specs = yaml.safe_load((ROOT / "roles" / role / "meta/argument_specs.yml").read_text())
        return specs["argument_specs"][entry]["options"][option]["choices"]

    assert set(choices("cnt_roll", "main", "cnt_roll_action")) <= set(
        choices("cnt_rollout", "audit", "cnt_rollout_action")
    )
    assert set(choices("cnt_roll", "main", "cnt_roll_action")) <= set(
        choices("cnt_rollout", "lock", "cnt_rollout_action")
    )
