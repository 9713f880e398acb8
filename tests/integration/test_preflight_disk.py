"""The preflight's disk check counts what pruning frees (issue 16, item 7), against this
machine's Docker engine: five versions of an image repository, the host's audit log
naming the last three deployed. Short of disk by less than the two older versions
weigh, the preflight passes and the prune removes exactly those two (the kept three stay
for rollbacks); short by more, it fails, saying both figures and what it would remove."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

REPOSITORY = "cnt-prune-test/backend"
VERSIONS = ["v1", "v2", "v3", "v4", "v5"]
MIB = 1024 * 1024
GIB = 1024 * MIB
# Each version's image: this many MiB of random (incompressible) bytes.
# Free disk moves while other work writes: never beside the Molecule lanes (make test).
pytestmark = pytest.mark.disk

IMAGE_MIB = 64

# What cnt_host does with the two steps: the preflight's disk check, then the prune
# when the preflight counted on it.
PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - ansible.builtin.include_role:
        name: cnt_preflight
        tasks_from: disk
    - ansible.builtin.include_role:
        name: cnt_rollout
        tasks_from: prune
      when: cnt_preflight_disk.short | bool
"""


def docker_root() -> str:
    return subprocess.run(
        ["docker", "info", "--format", "{{.DockerRootDir}}"], capture_output=True, text=True, check=True
    ).stdout.strip()


def tags() -> list[str]:
    out = subprocess.run(
        ["docker", "image", "ls", REPOSITORY, "--format", "{{.Tag}}"], capture_output=True, text=True, check=True
    ).stdout
    return sorted(out.split())


@pytest.fixture
def versions(tmp_path):
    """Five versions of the repository (distinct images), and an audit log in which the
    host deployed v3, then v4, then v5."""
    for version in VERSIONS:
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            data = os.urandom(IMAGE_MIB * MIB)
            info = tarfile.TarInfo(f"payload-{version}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        image = f"{REPOSITORY}:{version}"
        subprocess.run(["docker", "import", "-", image], input=archive.getvalue(), capture_output=True, check=True)
    audit = tmp_path / "cnt-deploy.log"
    audit.write_text(
        "".join(f"2026-11-28T02:0{i}:00Z action=deploy version={v} result=deployed\n" for i, v in enumerate(VERSIONS))
    )
    yield audit
    subprocess.run(["docker", "image", "rm", "-f", *[f"{REPOSITORY}:{v}" for v in VERSIONS]], capture_output=True)


def run(ansible_playbook, tmp_path: Path, audit: Path, short_by_mib: float):
    stat = os.statvfs(docker_root())
    free = stat.f_bavail * stat.f_frsize
    playbook = tmp_path / "disk.yml"
    playbook.write_text(PLAYBOOK)
    variables = {
        "cnt_preflight_docker_root": docker_root(),
        "cnt_preflight_min_free_gib": (free + short_by_mib * MIB) / GIB,
        "cnt_rollout_audit_log": str(audit),
        "cnt_rollout_prune_repositories": [REPOSITORY],
        "cnt_rollout_image_keep": 3,
        "cnt_app_version": "v6",
    }
    return ansible_playbook(str(playbook), "-e", json.dumps(variables))


def test_enough_with_pruning_prunes_the_older_versions_first(ansible_playbook, tmp_path, versions) -> None:
    # Short by half of what v1 and v2 weigh (64 MiB): far more than the disk noise of a
    # shared machine while the test runs.
    result = run(ansible_playbook, tmp_path, versions, short_by_mib=IMAGE_MIB)
    assert result.returncode == 0, result.stdout[-3000:]
    message = " ".join(result.stdout.split())
    assert "GiB needed: the images of older versions go first" in message, message[-3000:]
    assert f"{REPOSITORY}:v1" in message and f"{REPOSITORY}:v2" in message
    assert tags() == ["v3", "v4", "v5"]


def test_not_enough_even_with_pruning_fails_saying_both_figures(ansible_playbook, tmp_path, versions) -> None:
    result = run(ansible_playbook, tmp_path, versions, short_by_mib=20 * IMAGE_MIB)
    assert result.returncode != 0
    message = " ".join(result.stdout.split())
    assert "Preflight:" in message and "GiB are needed" in message
    # v1 and v2: 2 x 64 MiB = 0.125 GiB.
    assert "Removing the images of older versions would free 0.125 GiB" in message, message[-2000:]
    assert f"({REPOSITORY}:v1, {REPOSITORY}:v2)" in message or f"({REPOSITORY}:v2, {REPOSITORY}:v1)" in message
    # Nothing removed: a failed preflight changes nothing.
    assert tags() == VERSIONS


def test_enough_disk_prunes_nothing(ansible_playbook, tmp_path, versions) -> None:
    result = run(ansible_playbook, tmp_path, versions, short_by_mib=-1024)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "go first" not in result.stdout and "prune | Remove" not in result.stdout
    assert tags() == VERSIONS
