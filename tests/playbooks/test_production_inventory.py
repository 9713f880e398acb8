"""The production inventory validates and renders, end to end, against an AWS emulator.

Real parts: the amazon.aws aws_ec2 inventory plugin finds the Auto Scaling group's
instances, the ssm_parameter lookup reads SecureStrings, ansible-vault decrypts
a vault. AWS itself is moto in server mode on loopback (AWS_ENDPOINT_URL); instance
metadata is switched off, so nothing leaves this machine. The vault is this test's own
(a copy of the inventory with a fixture vault, encrypted here with a password made for
the run): the team's real vault.yml and its password never have to match anything here.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import yaml
from conftest import ROOT
from dotenv import dotenv_values
from moto_helper import moto_server

REGION = "eu-west-2"


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    """moto_server on loopback, with the production ASG's instances and SSM parameters."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with moto_server(log) as url:
        env = {
            "AWS_ENDPOINT_URL": url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
        ec2 = session.client("ec2", endpoint_url=url)
        image_id = ec2.describe_images()["Images"][0]["ImageId"]
        session.client("autoscaling", endpoint_url=url).create_launch_configuration(
            LaunchConfigurationName="cnt-app", ImageId=image_id, InstanceType="t3.small"
        )
        session.client("autoscaling", endpoint_url=url).create_auto_scaling_group(
            AutoScalingGroupName="cnt-production-app",
            LaunchConfigurationName="cnt-app",
            MinSize=2,
            MaxSize=4,
            DesiredCapacity=2,
            AvailabilityZones=[f"{REGION}a"],
        )
        # An instance outside the group must not be picked up.
        ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="t3.small")
        ssm = session.client("ssm", endpoint_url=url)
        ssm.put_parameter(
            Name="/cnt/production/redis_auth_token",
            Value="Prod-Auth-Token!&#$^<>-0123456789",
            Type="SecureString",
        )
        ssm.put_parameter(
            Name="/cnt/production/livekit_api_secret",
            Value="livekit-secret-from-ssm-0123456789abcdef",
            Type="SecureString",
        )
        asg_instances = {
            i["InstanceId"]
            for r in ec2.describe_instances(
                Filters=[{"Name": "tag:aws:autoscaling:groupName", "Values": ["cnt-production-app"]}]
            )["Reservations"]
            for i in r["Instances"]
        }
        yield env, asg_instances


FIXTURE_VAULT = {
    "vault_cnt_backend_secret_key": "fixture-secret-key-0123456789",
    "vault_cnt_database_url": "postgresql://cnt:fixture-db-password@db.internal:5432/cnt",
}


def fixture_inventory(tmp_path: Path) -> tuple[Path, Path]:
    """The production inventory with this test's vault (and its password file)."""
    inventory = tmp_path / "production"
    shutil.copytree(ROOT / "inventories/production", inventory)
    password = tmp_path / "vault-password"
    password.write_text(secrets.token_urlsafe(24))
    vault = inventory / "group_vars/all/vault.yml"
    vault.write_text("---\n" + yaml.safe_dump(FIXTURE_VAULT))
    subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-vault"),
            "encrypt",
            "--vault-password-file",
            str(password),
            str(vault),
        ],
        check=True,
        capture_output=True,
    )
    return inventory, password


def test_production_inventory_validates_and_renders_from_aws_and_vault(aws, tmp_path, ansible_playbook):
    env, asg_instances = aws
    assert len(asg_instances) == 2
    render_dir = tmp_path / "rendered"
    inventory, password = fixture_inventory(tmp_path)
    result = ansible_playbook(
        "-i",
        str(inventory),
        "--vault-password-file",
        str(password),
        "-e",
        json.dumps({"render_dir": str(render_dir)}),
        "playbooks/validate.yml",
        env={**os.environ, **env},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert {p.name for p in render_dir.iterdir()} == asg_instances

    for host in asg_instances:
        backend = dotenv_values(render_dir / host / "backend.env")
        assert backend["REDIS_URL"] == (
            "rediss://:Prod-Auth-Token%21%26%23%24%5E%3C%3E-0123456789"
            "@cnt-production.abc123.ng.0001.euw2.cache.amazonaws.com:6379/0"
        )
        assert backend["LIVEKIT_API_SECRET"] == "livekit-secret-from-ssm-0123456789abcdef"
        assert backend["SECRET_KEY"] == FIXTURE_VAULT["vault_cnt_backend_secret_key"]
        livekit = yaml.safe_load((render_dir / host / "livekit.yaml").read_text(encoding="utf-8"))
        assert livekit["redis"]["password"] == "Prod-Auth-Token!&#$^<>-0123456789"
        assert livekit["redis"]["tls"] == {"enabled": True}
        # The node IP comes from the instance's addresses (aws_ec2 compose).
        assert livekit["rtc"]["node_ip"]
    assert "Prod-Auth-Token" not in result.stdout
    assert inventory.joinpath("group_vars/all/vault.yml").read_text().startswith("$ANSIBLE_VAULT;")
    # The repository's own vault stays encrypted.
    assert ROOT.joinpath("inventories/production/group_vars/all/vault.yml").read_text().startswith("$ANSIBLE_VAULT;")
