#!/usr/bin/python
"""cnt_registry_digests: the digest each image of a version runs by, asked of the registry
and decided before anything changes.

No module of the collections answers this: community.docker's modules talk to an engine,
not to a registry's API, and `uri` would leave the decision to Jinja. This module asks the
registry (a HEAD request per manifest: by the version's tag, and by each digest the
version store records or the inventory pins) and decides with
plugins/module_utils/cnt_registry.py, which the unit tests try answer by answer.
"""

from __future__ import annotations

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.cnt_registry import decide, errors
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import open_url

DOCUMENTATION = r"""
module: cnt_registry_digests
short_description: Resolve a version's images to digests in a registry, or say why they cannot be had
description:
  - Asks the registry (Docker Registry HTTP API v2, over HTTPS) for each repository's manifest by the version's tag,
    and by each recorded digest; decides each image's digest (the recorded one wins, else the tag's).
  - Fails, naming the image and the registry and never the credentials, when the registry is down, refuses the
    credentials, lacks the tag (unless I(probe)), lacks a recorded digest, or tags another digest than the record.
  - Redirects are not followed (the credentials would go with them). Changes nothing; supports check mode.
options:
  registry:
    description: host[:port] of the registry.
    type: str
    required: true
  repositories:
    description: The repositories of the version's images.
    type: list
    elements: str
    required: true
  version:
    description: The tag to resolve.
    type: str
    required: true
  recorded:
    description: '{repository: digest} the version store records or the inventory pins.'
    type: dict
    default: {}
  sources:
    description: '{repository: where its recorded digest came from}, for the messages.'
    type: dict
    default: {}
  auth:
    description: 'How the run logs in (for the messages): ecr, password, none.'
    type: str
    default: none
  username:
    description: The registry user.
    type: str
  password:
    description: The registry password or token.
    type: str
  ca_cert:
    description: The registry's CA (PEM) when no public CA signs its certificate.
    type: str
    default: ""
  timeout:
    description: Seconds per request.
    type: int
    default: 15
  probe:
    description: A missing tag is an answer (build.yml asking whether a version was built), not an error.
    type: bool
    default: false
author: cnt-deploy
"""

EXAMPLES = r"""
- name: Resolve the version's digests
  cnt_registry_digests:
    registry: 123456789012.dkr.ecr.eu-west-2.amazonaws.com
    repositories: [cnt-backend, cnt-voice-agent]
    version: v1.2.4
    username: AWS
    password: "{{ token }}"
  delegate_to: localhost
  run_once: true
  register: resolved
"""

RETURN = r"""
resolved:
  description: "{repository: {image, digest, source, error, missing}}."
  returned: always
  type: dict
image_digests:
  description: "{repository: digest}, what the version store records."
  returned: always
  type: dict
missing:
  description: The repositories whose tag the registry lacks (a probe's answer).
  returned: always
  type: list
"""

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def ask(registry: str, repository: str, ref: str, params: dict, ca_path: str | None) -> dict:
    """One HEAD request for a manifest: {item, status, docker_content_digest, msg}."""
    answer = {"item": [repository, ref], "status": -1, "docker_content_digest": "", "msg": ""}
    try:
        response = open_url(
            f"https://{registry}/v2/{repository}/manifests/{ref}",
            method="HEAD",
            headers={"Accept": ACCEPT},
            url_username=params.get("username"),
            url_password=params.get("password"),
            force_basic_auth=bool(params.get("username")),
            ca_path=ca_path,
            timeout=params["timeout"],
            follow_redirects="none",
        )
        answer["status"] = response.getcode()
        answer["docker_content_digest"] = response.headers.get("Docker-Content-Digest", "")
    except HTTPError as error:
        answer["status"] = error.code
        answer["msg"] = f"HTTP Error {error.code}: {error.reason}"
    except (URLError, OSError, ValueError) as error:
        answer["msg"] = f"Request failed: {getattr(error, 'reason', error)}"
    return answer


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "registry": {"type": "str", "required": True},
            "repositories": {"type": "list", "elements": "str", "required": True},
            "version": {"type": "str", "required": True},
            "recorded": {"type": "dict", "default": {}},
            "sources": {"type": "dict", "default": {}},
            "auth": {"type": "str", "default": "none"},
            "username": {"type": "str"},
            "password": {"type": "str", "no_log": True},
            "ca_cert": {"type": "str", "default": ""},
            "timeout": {"type": "int", "default": 15},
            "probe": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    params = module.params
    registry, version = params["registry"], params["version"]
    recorded = {str(k): str(v) for k, v in params["recorded"].items() if v}
    ca_path = None
    try:
        if params["ca_cert"]:
            handle, ca_path = tempfile.mkstemp(suffix=".pem")
            with os.fdopen(handle, "w") as ca_file:
                ca_file.write(params["ca_cert"])
        refs = [(repository, version) for repository in params["repositories"]] + list(recorded.items())
        answers = [ask(registry, repository, ref, params, ca_path) for repository, ref in refs]
    finally:
        if ca_path:
            os.unlink(ca_path)
    resolved = decide(
        answers,
        registry=registry,
        repositories=params["repositories"],
        version=version,
        recorded=recorded,
        sources=params["sources"],
        auth=params["auth"],
    )
    result = {
        "changed": False,
        "resolved": resolved,
        "image_digests": {repository: r["digest"] for repository, r in resolved.items()},
        "missing": [repository for repository, r in resolved.items() if r["missing"]],
    }
    problems = errors(resolved, params["probe"])
    if problems:
        module.fail_json(msg="; ".join(problems), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
