"""The users' CI (.github/workflows/ci.yml), .ci/run and .pre-commit-config.yaml stay in
step: the same make targets, every Molecule scenario and platform, every inventory.
(`make lint` checks the workflow against GitHub's schema; this checks what it runs.)"""

from __future__ import annotations

import re

import yaml
from conftest import ROOT

WORKFLOW = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
MAKEFILE = (ROOT / "Makefile").read_text()
PRE_COMMIT = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())


def make_targets() -> dict[str, list[str]]:
    """Each Makefile target and its prerequisites."""
    return {
        m.group(1): m.group(2).split("##")[0].split()
        for m in re.finditer(r"^([a-z][a-z-]*):(?!=)(.*)$", MAKEFILE, re.MULTILINE)
    }


def runs(job: str) -> list[str]:
    return [step["run"] for step in WORKFLOW["jobs"][job]["steps"] if "run" in step]


def make_calls(job: str) -> list[str]:
    return [m.group(1) for run in runs(job) for m in re.finditer(r"\bmake (?:-\S+ )*([a-z][a-z-]*)", run)]


def test_every_job_runs_make_targets_that_exist():
    targets = make_targets()
    for job in WORKFLOW["jobs"]:
        calls = make_calls(job)
        assert calls, f"job {job} runs no make target"
        assert set(calls) <= set(targets), f"job {job}: {set(calls) - set(targets)} not in the Makefile"


def recipe(target: str) -> str:
    """The target's recipe: its tab-indented lines."""
    match = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", MAKEFILE, re.MULTILINE)
    return match.group(1) if match else ""


def test_the_workflow_runs_what_make_test_runs():
    """.ci/run runs `make test`; the workflow runs each of its parts (the checks make test
    runs beside each other: lint and unit, and molecule)."""
    assert re.search(r"^exec make test$", (ROOT / ".ci/run").read_text(), re.MULTILINE)
    called = re.findall(r"\$\(MAKE\) --no-print-directory ((?:[a-z][a-z-]*(?: |$))+)", recipe("test"), re.MULTILINE)
    parts = {target for call in called for target in call.split()}
    run_by_workflow = {call for job in WORKFLOW["jobs"] for call in make_calls(job)}
    assert parts == {"lint", "unit", "molecule"}
    assert parts <= run_by_workflow


def test_every_molecule_scenario_and_every_docker_platform_has_a_job():
    scenarios = {p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml")}
    matrix = WORKFLOW["jobs"]["molecule"]["strategy"]["matrix"]["include"]
    assert {entry["scenario"] for entry in matrix} == scenarios
    # The docker role converges on every platform of .config/molecule/config.yml.
    shared = yaml.safe_load((ROOT / ".config/molecule/config.yml").read_text())
    platforms = {p["name"].replace("${MOLECULE_SCENARIO_NAME}", "docker") for p in shared["platforms"]}
    assert {"docker-debian12", "docker-debian13"} == platforms
    assert {entry.get("platform") for entry in matrix if entry["scenario"] == "docker"} == platforms
    assert "--platform-name $(PLATFORM)" in MAKEFILE


def test_every_inventory_in_the_repository_is_validated():
    inventories = {
        str(p.parent.relative_to(ROOT))
        for pattern in ("inventories/*/hosts.yml", "inventories/*/aws_ec2.yml")
        for p in ROOT.glob(pattern)
    } | {str(p.relative_to(ROOT)) for p in ROOT.glob("inventories/pull/*/hosts.yml")}
    validated = {
        entry["inventory"]
        for job in ("validate", "validate-aws")
        for entry in WORKFLOW["jobs"][job]["strategy"]["matrix"]["include"]
    }
    assert validated == inventories
    for job in ("validate", "validate-aws"):
        assert any("make validate INVENTORY=${{ matrix.inventory }}" in run for run in runs(job))


def reads_secrets_or_aws(job: dict) -> bool:
    text = yaml.safe_dump(job)
    return (
        "secrets." in text
        or job.get("permissions", {}).get("id-token") == "write"
        or "configure-aws-credentials" in text
    )


def test_no_job_that_reads_secrets_or_assumes_a_role_runs_for_pull_requests():
    sensitive = {name: job for name, job in WORKFLOW["jobs"].items() if reads_secrets_or_aws(job)}
    assert set(sensitive) == {"validate-aws"}
    for name, job in sensitive.items():
        condition = job.get("if", "")
        assert "github.event_name != 'pull_request'" in condition, name
        assert "github.ref == 'refs/heads/main'" in condition, name
        assert job.get("environment"), f"{name} must run in a protected environment"
    # The workflow-wide token is read-only; no job but validate-aws asks for more.
    assert WORKFLOW["permissions"] == {"contents": "read"}


def test_every_action_is_pinned_to_a_full_commit():
    uses = [step["uses"] for job in WORKFLOW["jobs"].values() for step in job["steps"] if "uses" in step]
    assert uses
    for use in uses:
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", use), use
    # Each pin names its release beside it, for whoever updates it.
    text = (ROOT / ".github/workflows/ci.yml").read_text()
    for line in text.splitlines():
        if "uses:" in line:
            assert re.search(r"@[0-9a-f]{40}  # v\d", line), line


def test_pre_commit_runs_exactly_the_parts_of_make_lint():
    hooks = [hook for repo in PRE_COMMIT["repos"] for hook in repo["hooks"]]
    assert all(repo["repo"] == "local" for repo in PRE_COMMIT["repos"]), "hooks must not be fetched"
    entries = [hook["entry"].split()[-1] for hook in hooks]
    assert all(hook["entry"].startswith("make ") for hook in hooks)
    assert sorted(entries) == sorted(make_targets()["lint"])


def test_make_help_lists_every_target():
    documented = set(re.findall(r"^([a-z][a-z-]*):.*## ", MAKEFILE, re.MULTILINE))
    assert documented == set(make_targets())
