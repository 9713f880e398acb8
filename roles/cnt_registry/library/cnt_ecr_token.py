#!/usr/bin/python
"""cnt_ecr_token: an ECR registry login from the AWS credentials at hand.

No module of amazon.aws or community.aws returns ECR's authorization token (the
`aws ecr get-login-password` of the CLI), so this one does, through amazon.aws's own
module base: the same credential chain (the instance role, the operator's profile,
AWS_ENDPOINT_URL) and region handling as every other AWS task of the project.
"""

from __future__ import annotations

import base64
import contextlib

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

with contextlib.suppress(ImportError):  # AnsibleAWSModule reports the missing library
    import botocore

DOCUMENTATION = r"""
module: cnt_ecr_token
short_description: The username and password Docker logs in to ECR with
description:
  - Calls ECR GetAuthorizationToken and decodes the token into the username and
    password C(docker login) takes. The token is valid for 12 hours; ask for a new one
    each run.
  - The result holds a credential; run the task with C(no_log).
options:
  registry_id:
    description: The registry's account ID (the first label of an ECR host name); the caller's account when empty.
    type: str
    default: ""
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

RETURN = r"""
username:
  description: The user name (C(AWS) for ECR).
  returned: success
  type: str
password:
  description: The registry password (secret).
  returned: success
  type: str
expires_at:
  description: When the token expires (ISO 8601).
  returned: success
  type: str
proxy_endpoint:
  description: The registry's URL as ECR names it.
  returned: success
  type: str
"""


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec={"registry_id": {"type": "str", "default": ""}},
        supports_check_mode=True,
    )
    client = module.client("ecr")
    kwargs = {"registryIds": [module.params["registry_id"]]} if module.params["registry_id"] else {}
    try:
        data = client.get_authorization_token(**kwargs)["authorizationData"][0]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        module.fail_json_aws(error, msg="ECR refused an authorization token")
    username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    if not password:
        module.fail_json(msg="ECR answered a token that is not user:password")
    expires = data.get("expiresAt")
    module.exit_json(
        changed=False,
        username=username,
        password=password,
        expires_at=expires.isoformat() if hasattr(expires, "isoformat") else str(expires or ""),
        proxy_endpoint=data.get("proxyEndpoint", ""),
    )


if __name__ == "__main__":
    main()
