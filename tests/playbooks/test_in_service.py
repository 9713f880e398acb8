"""Only the instances Auto Scaling has in service take part in a run (playbooks/in-service.yml,
imported by known-hosts.yml, so by deploy, rollback, verify, stack, docker): against an
emulated Auto Scaling (moto on loopback), an instance in Standby and one the group no
longer holds are told apart from those in service; hosts without an instance ID (the
demo's, the tests') are always in."""

from __future__ import annotations

import sys

import boto3
import yaml
from moto_helper import moto_server

REGION = "eu-west-2"
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def test_a_run_takes_only_the_instances_in_service_and_says_which_it_leaves_out(tmp_path, ansible_playbook):
    with moto_server(tmp_path / "moto.log") as url:
        ec2 = boto3.client("ec2", endpoint_url=url, region_name=REGION, **KEYS)
        autoscaling = boto3.client("autoscaling", endpoint_url=url, region_name=REGION, **KEYS)
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        ec2.create_launch_template(LaunchTemplateName="cnt", LaunchTemplateData={"ImageId": image})
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName="cnt-production-app",
            LaunchTemplate={"LaunchTemplateName": "cnt"},
            MinSize=0,
            MaxSize=3,
            DesiredCapacity=3,
            AvailabilityZones=[f"{REGION}a"],
        )
        group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["cnt-production-app"])
        in_service, standby, detached = sorted(i["InstanceId"] for i in group["AutoScalingGroups"][0]["Instances"])
        autoscaling.enter_standby(
            AutoScalingGroupName="cnt-production-app", InstanceIds=[standby], ShouldDecrementDesiredCapacity=True
        )
        autoscaling.detach_instances(
            AutoScalingGroupName="cnt-production-app", InstanceIds=[detached], ShouldDecrementDesiredCapacity=True
        )
        # Not in alphabetical order: the run keeps the inventory's.
        hosts = {
            "app-no-id": {},
            "app-in-service": {"instance_id": in_service},
            "app-standby": {"instance_id": standby},
            "app-no-group": {"instance_id": detached},
        }
        inventory = tmp_path / "hosts.yml"
        inventory.write_text(
            yaml.safe_dump(
                {
                    "app_servers": {
                        "hosts": hosts,
                        "vars": {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": sys.executable,
                            "cnt_aws_region": REGION,
                        },
                    }
                },
                sort_keys=False,
            )
        )
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_ENDPOINT_URL": url}
        run = ansible_playbook(
            "-i", str(inventory), "tests/playbooks/plays/in_service.yml", "-e", f"out_dir={tmp_path}", env=env
        )
    assert run.returncode == 0, run.stdout + run.stderr
    # In the inventory's order (deploy.yml's canary is the first host that changes).
    assert (tmp_path / "in-service.txt").read_text().split() == ["app-no-id", "app-in-service", "app-no-group"]
    flat = " ".join(run.stdout.split())
    assert f"Left out (not InService in their Auto Scaling group): {standby} Standby" in flat
