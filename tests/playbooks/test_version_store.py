"""The one source of truth for versions, against an emulated SSM Parameter Store (moto on
loopback): deploy.yml records the version it rolled out, once per environment, and an
instance configuring itself (local.yml) deploys that version, not the cnt_app_version of
the repository's inventory. boto3 reaches the emulator through AWS_ENDPOINT_URL only, as
the instances do in the Molecule bootstrap scenario."""

from __future__ import annotations

import json
import subprocess
import sys

import boto3
import pytest
import yaml
from moto_helper import moto_server

REGION = "eu-west-2"


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    """A repository deploy.yml runs from, with one commit."""
    path = tmp_path_factory.mktemp("repository")
    git = ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    (path / "site.yml").write_text("---\n")
    subprocess.run([*git, "add", "site.yml"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "first"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    return path, commit


@pytest.fixture(scope="module")
def ssm(tmp_path_factory):
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as url:
        yield (
            url,
            boto3.client(
                "ssm",
                endpoint_url=url,
                region_name=REGION,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            ),
        )


def run(ansible_playbook, tmp_path, url, steps, **inventory_vars):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "app_servers": {
                    "hosts": {"app-1": {}, "app-2": {}},
                    "vars": {
                        "ansible_connection": "local",
                        "ansible_python_interpreter": sys.executable,
                        "cnt_environment": "staging",
                        "cnt_aws_region": REGION,
                        **inventory_vars,
                    },
                }
            }
        )
    )
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": url,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    return ansible_playbook(
        "-i",
        str(inventory),
        "tests/playbooks/plays/version.yml",
        "-e",
        f"steps={steps}",
        "-e",
        f"out_dir={tmp_path}",
        env=env,
    )


def test_deploy_records_the_version_and_a_new_instance_deploys_it(ssm, tmp_path, ansible_playbook, repository):
    url, client = ssm
    path, commit = repository
    recorded = run(
        ansible_playbook, tmp_path, url, "record", cnt_app_version="v2.3.4", cnt_rollout_repository=str(path)
    )
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    parameter = client.get_parameter(Name="/cnt/staging/app_version")["Parameter"]
    assert (parameter["Value"], parameter["Version"]) == ("v2.3.4", 1)  # once for the fleet, not per host
    # The commit it deployed from, pinned beside it for the instances (cnt-pull).
    pinned = client.get_parameter(Name="/cnt/staging/app_commit")["Parameter"]
    assert (pinned["Value"], pinned["Version"]) == (commit, 1)

    # The instance's inventory (the repository's) says v1.0.0; the store says v2.3.4.
    read = run(ansible_playbook, tmp_path, url, "read", cnt_app_version="v1.0.0")
    assert read.returncode == 0, read.stdout + read.stderr
    assert (tmp_path / "app-1.version").read_text() == "v2.3.4"
    assert "staging runs v2.3.4 (recorded in SSM /cnt/staging/app_version)" in read.stdout


def test_an_unchanged_version_is_not_rewritten(ssm, tmp_path, ansible_playbook, repository):
    url, client = ssm
    before = client.get_parameter(Name="/cnt/staging/app_version")["Parameter"]["Version"]
    again = run(
        ansible_playbook, tmp_path, url, "record", cnt_app_version="v2.3.4", cnt_rollout_repository=str(repository[0])
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "changed=0" in again.stdout.split("PLAY RECAP")[-1]
    assert client.get_parameter(Name="/cnt/staging/app_version")["Parameter"]["Version"] == before


def test_uncommitted_changes_or_no_git_pin_no_commit(ssm, tmp_path, ansible_playbook, repository):
    """A commit that does not hold what ran cannot be pinned: the pin is removed (the
    instances follow their branch) rather than left on an older commit."""
    url, client = ssm
    path, _ = repository
    (path / "site.yml").write_text("---\n# edited, not committed\n")
    try:
        dirty = run(
            ansible_playbook, tmp_path, url, "record", cnt_app_version="v2.3.5", cnt_rollout_repository=str(path)
        )
    finally:
        subprocess.run(["git", "-C", str(path), "checkout", "-q", "--", "site.yml"], check=True)
    assert dirty.returncode == 0, dirty.stdout + dirty.stderr
    assert client.get_parameter(Name="/cnt/staging/app_version")["Parameter"]["Value"] == "v2.3.5"
    assert client.get_parameters(Names=["/cnt/staging/app_commit"])["InvalidParameters"] == ["/cnt/staging/app_commit"]

    # Pinned again from the clean tree, then from a directory that is no git checkout.
    run(ansible_playbook, tmp_path, url, "record", cnt_app_version="v2.3.5", cnt_rollout_repository=str(path))
    assert client.get_parameter(Name="/cnt/staging/app_commit")["Parameter"]["Value"] == repository[1]
    untracked = run(ansible_playbook, tmp_path, url, "record", cnt_app_version="v2.3.5", cnt_rollout_repository="/")
    assert untracked.returncode == 0, untracked.stdout + untracked.stderr
    assert client.get_parameters(Names=["/cnt/staging/app_commit"])["InvalidParameters"] == ["/cnt/staging/app_commit"]


def test_no_recorded_version_stops_the_instance(ssm, tmp_path, ansible_playbook):
    url, _ = ssm
    read = run(
        ansible_playbook, tmp_path, url, "read", cnt_app_version="v1.0.0", cnt_version_parameter="/cnt/staging/never"
    )
    assert read.returncode != 0
    assert "/cnt/staging/never" in read.stdout + read.stderr
    assert not (tmp_path / "app-1.version").exists()


def test_version_store_none_records_nothing_and_keeps_the_inventory_version(ssm, tmp_path, ansible_playbook):
    url, client = ssm
    result = run(
        ansible_playbook,
        tmp_path,
        url,
        "record,read",
        cnt_app_version="v9.9.9",
        cnt_version_store="none",
        cnt_version_parameter="/cnt/staging/none",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert client.get_parameters(Names=["/cnt/staging/none"])["InvalidParameters"] == ["/cnt/staging/none"]
    assert (tmp_path / "app-1.version").read_text() == "v9.9.9"


def test_deploy_records_the_digests_the_version_ran_by_beside_it(ssm, tmp_path, ansible_playbook, repository):
    url, client = ssm
    path, _ = repository
    digests = {"cnt-backend": "sha256:" + "a" * 64, "cnt-voice-agent": "sha256:" + "b" * 64}
    recorded = run(
        ansible_playbook,
        tmp_path,
        url,
        "record",
        cnt_app_version="v3.0.0",
        cnt_rollout_repository=str(path),
        cnt_rollout_image_digests=digests,
    )
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    # Where a new instance (cnt_registry's resolve) reads them: beside the version parameter.
    parameter = client.get_parameter(Name="/cnt/staging/images/v3.0.0")["Parameter"]
    assert (json.loads(parameter["Value"]), parameter["Version"]) == (digests, 1)
