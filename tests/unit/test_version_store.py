"""The one source of truth for versions, against an emulated SSM Parameter Store (moto on
loopback): deploy.yml records the version it rolled out, once per environment, and an
instance configuring itself (local.yml) deploys that version, not the cnt_app_version of
the repository's inventory. boto3 reaches the emulator through AWS_ENDPOINT_URL only, as
the instances do in the Molecule bootstrap scenario."""

from __future__ import annotations

import sys

import boto3
import pytest
import yaml
from moto_helper import moto_server

REGION = "eu-west-2"


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
        "tests/unit/playbooks/version.yml",
        "-e",
        f"steps={steps}",
        "-e",
        f"out_dir={tmp_path}",
        env=env,
    )


def test_deploy_records_the_version_and_a_new_instance_deploys_it(ssm, tmp_path, ansible_playbook):
    url, client = ssm
    recorded = run(ansible_playbook, tmp_path, url, "record", cnt_app_version="v2.3.4")
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    parameter = client.get_parameter(Name="/cnt/staging/app_version")["Parameter"]
    assert (parameter["Value"], parameter["Version"]) == ("v2.3.4", 1)  # once for the fleet, not per host

    # The instance's inventory (the repository's) says v1.0.0; the store says v2.3.4.
    read = run(ansible_playbook, tmp_path, url, "read", cnt_app_version="v1.0.0")
    assert read.returncode == 0, read.stdout + read.stderr
    assert (tmp_path / "app-1.version").read_text() == "v2.3.4"
    assert "staging runs v2.3.4 (recorded in SSM /cnt/staging/app_version)" in read.stdout


def test_an_unchanged_version_is_not_rewritten(ssm, tmp_path, ansible_playbook):
    url, client = ssm
    before = client.get_parameter(Name="/cnt/staging/app_version")["Parameter"]["Version"]
    again = run(ansible_playbook, tmp_path, url, "record", cnt_app_version="v2.3.4")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "changed=0" in again.stdout.split("PLAY RECAP")[-1]
    assert client.get_parameter(Name="/cnt/staging/app_version")["Parameter"]["Version"] == before


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
