"""What the user data and cnt-pull ask AWS before Ansible runs, as this instance (its
role's credentials): instance metadata (IMDSv2) names the instance and its region.

  instance.py tag KEY       print the instance's tag KEY (ec2:DescribeTags)
  instance.py secret ID     print Secrets Manager secret ID (secretsmanager:GetSecretValue):
                            the ansible-vault password, through bootstrap/vault-password
  instance.py parameter NAME  print SSM parameter NAME (ssm:GetParameter), nothing if it
                            does not exist: the commit the last deploy pinned, for cnt-pull

CNT_IMDS_URL names the metadata endpoint (tests serve their own); boto3 follows its usual
settings (AWS_ENDPOINT_URL in tests, the instance role for credentials).
"""

from __future__ import annotations

import contextlib
import os
import sys
import urllib.request

import boto3


def metadata(*paths: str) -> list[str]:
    base = os.environ.get("CNT_IMDS_URL", "http://169.254.169.254").rstrip("/")
    request = urllib.request.Request(
        f"{base}/latest/api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        token = answer.read().decode()
    values = []
    for path in paths:
        request = urllib.request.Request(f"{base}/latest/meta-data/{path}", headers={"X-aws-ec2-metadata-token": token})
        with urllib.request.urlopen(request, timeout=5) as answer:
            values.append(answer.read().decode().strip())
    return values


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ("tag", "secret", "parameter"):
        print(__doc__, file=sys.stderr)
        return 2
    what, name = argv[1], argv[2]
    if what == "tag":
        instance_id, region = metadata("instance-id", "placement/region")
        tags = boto3.client("ec2", region_name=region).describe_tags(
            Filters=[{"Name": "resource-id", "Values": [instance_id]}, {"Name": "key", "Values": [name]}]
        )["Tags"]
        if not tags:
            print(f"instance {instance_id} has no tag {name}", file=sys.stderr)
            return 1
        print(tags[0]["Value"])
    elif what == "parameter":
        (region,) = metadata("placement/region")
        ssm = boto3.client("ssm", region_name=region)
        with contextlib.suppress(ssm.exceptions.ParameterNotFound):
            print(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    else:
        (region,) = metadata("placement/region")
        print(boto3.client("secretsmanager", region_name=region).get_secret_value(SecretId=name)["SecretString"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
