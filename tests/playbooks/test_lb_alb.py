"""cnt_lb's ALB path (cnt_lb_type: alb) against an emulated ELBv2 API (moto in server mode
on loopback): drain deregisters the instance from its target group and waits, status then
says it is out (the plan and verify read it), enable registers it again and waits until it
is healthy, and status says it is in service. No traffic leaves this machine."""

from __future__ import annotations

import json
import re
import sys

import boto3
import pytest
import yaml
from moto_helper import moto_server

REGION = "eu-west-2"


@pytest.fixture(scope="module")
def elb(tmp_path_factory):
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with moto_server(log) as url:
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
        ec2 = session.client("ec2", endpoint_url=url)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        image = ec2.describe_images()["Images"][0]["ImageId"]
        instances = [
            i["InstanceId"]
            for i in ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2, SubnetId=subnet)["Instances"]
        ]
        elbv2 = session.client("elbv2", endpoint_url=url)
        group = elbv2.create_target_group(Name="cnt-test-backend", Protocol="HTTP", Port=8000, VpcId=vpc)
        arn = group["TargetGroups"][0]["TargetGroupArn"]
        elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": i, "Port": 8000} for i in instances])
        yield url, elbv2, arn, instances


def registered(elbv2, arn) -> dict[str, str]:
    health = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    return {t["Target"]["Id"]: t["TargetHealth"]["State"] for t in health}


def run(ansible_playbook, tmp_path, url, instance, group, entry):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "app_servers": {
                    "hosts": {"app-1": {"instance_id": instance}},
                    "vars": {
                        "ansible_connection": "local",
                        "ansible_python_interpreter": sys.executable,
                        "cnt_lb_type": "alb",
                        "cnt_lb_alb_target_groups": [group],
                        "cnt_lb_alb_region": REGION,
                        "cnt_lb_alb_endpoint_url": url,
                        "cnt_lb_alb_timeout": 30,
                    },
                }
            }
        )
    )
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true"}
    return ansible_playbook("-i", str(inventory), "tests/playbooks/plays/lb.yml", "-e", f"entry={entry}", env=env)


@pytest.mark.parametrize("group_by", ["name", "arn"])
def test_drain_deregisters_the_instance_and_enable_brings_it_back_healthy(elb, tmp_path, ansible_playbook, group_by):
    url, elbv2, arn, (instance, other) = elb
    group = arn if group_by == "arn" else "cnt-test-backend"

    drained = run(ansible_playbook, tmp_path, url, instance, group, "drain")
    assert drained.returncode == 0, drained.stdout + drained.stderr
    assert instance not in registered(elbv2, arn)
    # Only this host leaves: the other instance keeps serving.
    assert registered(elbv2, arn)[other] == "healthy"

    assert status(ansible_playbook, tmp_path, url, instance, group) == {
        "in_service": False,
        "out": [f"{group}: the instance is not registered"],
    }

    enabled = run(ansible_playbook, tmp_path, url, instance, group, "enable")
    assert enabled.returncode == 0, enabled.stdout + enabled.stderr
    assert registered(elbv2, arn) == {instance: "healthy", other: "healthy"}
    assert status(ansible_playbook, tmp_path, url, instance, group) == {"in_service": True, "out": []}


def status(ansible_playbook, tmp_path, url, instance, group) -> dict:
    """cnt_lb's status entry point for the instance, as the plan and verify.yml read it."""
    read = run(ansible_playbook, tmp_path, url, instance, group, "status")
    assert read.returncode == 0, read.stdout + read.stderr
    # The YAML callback quotes and folds the message: join its lines first.
    found = re.search(r"CNT_LB_STATUS=(\{.*?\})'", " ".join(read.stdout.split()))
    assert found, read.stdout
    return json.loads(found.group(1))
