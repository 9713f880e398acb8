"""ECR login (roles/cnt_registry/library/cnt_ecr_token.py, the one custom module: no
amazon.aws or community.aws module returns ECR's authorization token): the token ECR
gives the AWS credentials at hand, decoded into a docker login, never printed; no token
stops the run naming the registry. Against an emulated ECR (moto on loopback)."""

from __future__ import annotations

import json
import sys

import pytest
from moto_helper import moto_server

REGISTRY = "123456789012.dkr.ecr.eu-west-2.amazonaws.com"
# What moto's GetAuthorizationToken answers for account 123456789012: AWS:<this>.
TOKEN = "123456789012-auth-token"


@pytest.fixture(scope="module")
def ecr(tmp_path_factory):
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as url:
        yield url


def run(ansible_playbook, tmp_path, endpoint: str):
    return ansible_playbook(
        "-vvv",
        "-i",
        "localhost,",
        "-c",
        "local",
        "tests/playbooks/plays/ecr_token.yml",
        "-e",
        json.dumps(
            {
                "ansible_python_interpreter": sys.executable,
                "cnt_registry": REGISTRY,
                "cnt_aws_region": "eu-west-2",
                "cnt_app_version": "v1.0.0",
                "out_dir": str(tmp_path),
            }
        ),
        env={
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_MAX_ATTEMPTS": "1",
        },
    )


def test_an_ecr_registry_logs_in_with_the_token_ecr_gives_and_never_prints_it(ecr, tmp_path, ansible_playbook):
    result = run(ansible_playbook, tmp_path, ecr)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    kept = json.loads((tmp_path / "login.json").read_text())
    # ECR is recognised by its host name; the token decodes to docker login's user and password.
    assert kept == {"username": "AWS", "password": TOKEN}
    assert TOKEN not in result.stdout + result.stderr


def test_no_token_stops_the_run_naming_the_registry_and_the_permission(tmp_path, ansible_playbook):
    # Nothing listens there: ECR cannot be asked.
    result = run(ansible_playbook, tmp_path, "http://127.0.0.1:9")
    assert result.returncode != 0
    out = " ".join(result.stdout.split())
    assert f"No ECR login token for registry {REGISTRY}" in out, out[-3000:]
    assert "ecr:GetAuthorizationToken" in out
    assert not (tmp_path / "login.json").exists()
