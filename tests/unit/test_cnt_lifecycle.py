"""cnt-lifecycle, the user data's own Auto Scaling client (bootstrap/user-data.sh writes it
to /usr/local/sbin): standard library only, so it works when apt or pip failed. Its
SigV4 signature must be the one botocore computes for the same call, or AWS refuses it.
(The Molecule `bootstrap` scenario runs it against the test doubles, which do not check
signatures.)"""

from __future__ import annotations

import datetime
import importlib.util
import re
import sys
from pathlib import Path
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory):
    text = (ROOT / "bootstrap" / "user-data.sh").read_text()
    source = re.search(r"<<'LIFECYCLE'\n(.*?)\nLIFECYCLE\n", text, re.DOTALL).group(1)
    path = tmp_path_factory.mktemp("lifecycle") / "cnt_lifecycle.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("cnt_lifecycle", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("token", ["session-token-from-the-instance-role", None])
def test_the_signature_is_botocores(lifecycle, token) -> None:
    now = datetime.datetime(2026, 11, 28, 2, 0, 0, tzinfo=datetime.UTC)
    url = "https://autoscaling.eu-west-2.amazonaws.com/"
    body = "Action=CompleteLifecycleAction&AutoScalingGroupName=cnt-production-app&Version=2011-01-01"
    credentials = {"AccessKeyId": "ASIAEXAMPLE", "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG", "Token": token}
    ours = lifecycle.sign("POST", url, body, "eu-west-2", credentials, now)

    request = AWSRequest(
        method="POST", url=url, data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )  # fmt: skip
    with mock.patch("botocore.auth.get_current_datetime", return_value=now.replace(tzinfo=None)):
        SigV4Auth(Credentials("ASIAEXAMPLE", "wJalrXUtnFEMI/K7MDENG", token), "autoscaling", "eu-west-2").add_auth(
            request
        )
    assert ours["authorization"] == request.headers["Authorization"]
    assert ours["x-amz-date"] == request.headers["X-Amz-Date"] == "20261128T020000Z"


def test_it_needs_nothing_but_the_standard_library(lifecycle) -> None:
    source = Path(lifecycle.__file__).read_text()
    imported = set(re.findall(r"^import (.+)$", source, re.MULTILINE)[0].replace(" ", "").split(","))
    assert {name.split(".")[0] for name in imported} <= set(sys.stdlib_module_names)
    assert "from " not in source.split('"""', 2)[2].split("def ")[0]
