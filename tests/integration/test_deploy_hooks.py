"""The team's deploy hooks (cnt_deploy_hooks, playbooks/tasks/event.yml) on two local
hosts: each hook gets the run's facts; a failing hook stops the run at `before` and
fails the host at `after_host`, and only warns at `success` (the result stands)."""

from __future__ import annotations

import json

import pytest

RECORD = """
- name: Record the facts the hook got
  ansible.builtin.lineinfile:
    path: {path}
    line: "{{{{ inventory_hostname }}}} {{{{ cnt_deploy_event | to_json }}}}"
    create: true
    mode: "0600"
  delegate_to: localhost
  # Both hosts write the one file: one at a time (lineinfile reads, then replaces it; two
  # at once lose a line).
  throttle: 1
"""
FAIL = """
- name: Refuse (a change freeze)
  ansible.builtin.fail:
    msg: change freeze until Monday
"""


@pytest.fixture
def hooks(tmp_path, ansible_playbook):
    record, refuse = tmp_path / "record.yml", tmp_path / "refuse.yml"
    facts = tmp_path / "facts.log"
    record.write_text(RECORD.format(path=facts))
    refuse.write_text(FAIL)

    def run(point: str, *files: str):
        names = {"record": str(record), "refuse": str(refuse)}
        chosen = json.dumps({"hooks": json.dumps([names[f] for f in files])})
        result = ansible_playbook(
            "-i", "app-1,app-2,", "-c", "local", "-e", "ansible_python_interpreter={{ ansible_playbook_python }}",
            "tests/integration/hooks.yml", "-e", f"point={point}", "-e", chosen,
        )  # fmt: skip
        got = (
            [(line.split(" ", 1)[0], json.loads(line.split(" ", 1)[1])) for line in facts.read_text().splitlines()]
            if facts.exists()
            else []
        )
        return result, got

    return run


def test_a_hook_gets_the_runs_facts_once_per_run_or_per_host(hooks):
    result, got = hooks("before", "record")
    assert result.returncode == 0, result.stdout[-3000:]
    assert len(got) == 1
    assert {k: got[0][1][k] for k in ("point", "run", "environment", "version", "result", "host")} == {
        "point": "before",
        "run": "run-1",
        "environment": "test",
        "version": "v9",
        "result": "before-result",
        "host": "",
    }
    result, got = hooks("after_host", "record")
    assert result.returncode == 0, result.stdout[-3000:]
    assert sorted((host, facts["host"]) for host, facts in got[1:]) == [("app-1", "app-1"), ("app-2", "app-2")]


def test_a_failing_hook_before_the_deploy_stops_the_run_and_the_hooks_after_it(hooks):
    result, got = hooks("before", "refuse", "record")
    assert result.returncode != 0
    flat = " ".join(result.stdout.split())
    assert "The hook at before failed (Refuse (a change freeze)): change freeze until Monday" in flat
    assert "the run went on" not in flat and got == []


def test_a_failing_hook_after_a_host_fails_that_host(hooks):
    result, _ = hooks("after_host", "refuse")
    assert result.returncode != 0
    assert "The hook at after_host failed" in " ".join(result.stdout.split())


def test_a_failing_hook_after_success_warns_and_the_run_goes_on(hooks):
    result, _ = hooks("success", "refuse", "record")
    assert result.returncode == 0, result.stdout[-3000:]
    flat = " ".join(result.stdout.split())
    assert "WARNING: the hook at success failed (Refuse (a change freeze)): change freeze until Monday" in flat
    assert "the run went on" in flat
