"""playbooks/known-hosts.yml against an emulated Parameter Store (moto on loopback): the
controller's known_hosts file holds exactly the keys the run's hosts published, at their
addresses; a host that published none stops the run by name. No host is contacted (the
tasks run on the controller). And the publishing side (roles/cnt_pull) writes what the
trusting side reads. The SSH side, a host with another key refused, runs in the Molecule
bootstrap scenario."""

from __future__ import annotations

import json
import os

import boto3
import pytest
import yaml
from moto_helper import moto_server

REGION = "eu-west-2"
KEYS = {
    "i-0aaaaaaaaaaaaaaa1": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOne\necdsa-sha2-nistp256 AAAAE2VjZHNhOne",
    "i-0bbbbbbbbbbbbbbb2": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITwo",
}


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as url:
        ssm = boto3.client(
            "ssm", endpoint_url=url, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        for instance, keys in KEYS.items():
            ssm.put_parameter(Name=f"/cnt/staging/ssh-host-keys/{instance}", Value=keys, Type="String")
        ssm.put_parameter(
            Name="/cnt/production/ssh-host-keys/i-0ccccccccccccccc3", Value="ssh-ed25519 AAAAOther", Type="String"
        )
        yield {
            **os.environ,
            "AWS_ENDPOINT_URL": url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
        }


def run(ansible_playbook, tmp_path, env, hosts: dict):
    known_hosts = tmp_path / "ssh" / "known_hosts"
    inventory = tmp_path / "hosts.yml"
    group = {
        "cnt_environment": "staging",
        "cnt_aws_region": REGION,
        "cnt_ssh_host_keys": "ssm",
        "cnt_ssh_known_hosts_file": str(known_hosts),
    }
    inventory.write_text(yaml.safe_dump({"app_servers": {"hosts": hosts, "vars": group}}))
    return ansible_playbook("-i", str(inventory), "playbooks/known-hosts.yml", env=env), known_hosts


def test_known_hosts_holds_exactly_the_published_keys_at_each_address(aws, tmp_path, ansible_playbook):
    hosts = {
        "i-0aaaaaaaaaaaaaaa1": {"ansible_host": "10.0.1.11", "instance_id": "i-0aaaaaaaaaaaaaaa1"},
        # Named otherwise in the inventory: found by its instance ID.
        "app-2": {"ansible_host": "10.0.1.12", "instance_id": "i-0bbbbbbbbbbbbbbb2"},
    }
    result, known_hosts = run(ansible_playbook, tmp_path, aws, hosts)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in known_hosts.read_text().splitlines() if not line.startswith("#")]
    assert sorted(lines) == [
        "10.0.1.11 ecdsa-sha2-nistp256 AAAAE2VjZHNhOne",
        "10.0.1.11 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOne",
        "10.0.1.12 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITwo",
    ]
    assert oct(known_hosts.stat().st_mode & 0o777) == "0o600"


def test_a_host_that_published_no_key_stops_the_run_by_name(aws, tmp_path, ansible_playbook):
    hosts = {
        "i-0aaaaaaaaaaaaaaa1": {"ansible_host": "10.0.1.11", "instance_id": "i-0aaaaaaaaaaaaaaa1"},
        # Published under another environment's path: not trusted here.
        "i-0ccccccccccccccc3": {"ansible_host": "10.0.1.13", "instance_id": "i-0ccccccccccccccc3"},
    }
    result, known_hosts = run(ansible_playbook, tmp_path, aws, hosts)
    assert result.returncode != 0
    assert "No SSH host key published for i-0ccccccccccccccc3 under /cnt/staging/ssh-host-keys" in " ".join(
        result.stdout.split()
    )
    assert not known_hosts.exists()


def test_what_an_instance_publishes_is_what_the_controller_trusts(aws, tmp_path, ansible_playbook):
    keys = tmp_path / "etc-ssh"
    keys.mkdir()
    (keys / "ssh_host_ed25519_key.pub").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIThree root@host\n")
    (keys / "ssh_host_rsa_key.pub").write_text("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQThree root@host\n")
    (keys / "ssh_host_rsa_key").write_text("PRIVATE, never published\n")
    extra = {
        "cnt_environment": "staging",
        "cnt_aws_region": REGION,
        "cnt_pull_instance_id": "i-0ddddddddddddddd4",
        "cnt_pull_host_keys_glob": f"{keys}/ssh_host_*_key.pub",
    }
    published = ansible_playbook("-e", json.dumps(extra), "tests/playbooks/plays/host_keys.yml", env=aws)
    assert published.returncode == 0, published.stdout
    again = ansible_playbook("-e", json.dumps(extra), "tests/playbooks/plays/host_keys.yml", env=aws)
    assert "changed=0" in again.stdout.split("PLAY RECAP")[-1], "publishing the same keys changes nothing"

    hosts = {"i-0ddddddddddddddd4": {"ansible_host": "10.0.1.14", "instance_id": "i-0ddddddddddddddd4"}}
    result, known_hosts = run(ansible_playbook, tmp_path, aws, hosts)
    assert result.returncode == 0, result.stdout
    assert sorted(line for line in known_hosts.read_text().splitlines() if not line.startswith("#")) == [
        "10.0.1.14 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIThree",
        "10.0.1.14 ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQThree",
    ]
