"""The digest each image of a version runs by, decided from the registry's answers.

Shared by plugins/modules/cnt_registry_digests.py (which asks the registry) and its unit
tests (tests/unit/plugins/module_utils/test_cnt_registry.py), which try every answer a
registry can give without one. Standard library only: it runs inside the module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

# A URL's user:password@ in an error message (the registry's, never printed).
URL_CREDENTIALS = re.compile(r"(?i)(https?://)[^@/\s]*@")


def decide(
    answers: Iterable[Mapping[str, Any]],
    *,
    registry: str,
    repositories: Iterable[str],
    version: object,
    recorded: Mapping[str, str] | None = None,
    sources: Mapping[str, str] | None = None,
    auth: str = "password",
) -> dict:
    """The digest each image runs by, and why it cannot be had.

    answers: the registry's HEAD answers, each {item: [repository, tag or digest],
    status, docker_content_digest, msg} (the `uri` loop's results); recorded: the
    digests the version store records or the inventory pins ({repository: digest}),
    sources: where each came from. The recorded digest wins; else the tag's. Returns
    {repository: {image, digest, source, error ('' when none), missing (the tag is
    not in the registry and nothing is recorded)}}. An error never holds credentials."""
    recorded = recorded or {}
    sources = sources or {}
    by_ref = {}
    for answer in answers:
        repository, ref = answer["item"][0], answer["item"][1]
        by_ref[(repository, str(ref))] = {
            "status": int(answer.get("status", -1) if answer.get("status") is not None else -1),
            "digest": str(answer.get("docker_content_digest") or ""),
            "msg": str(answer.get("msg") or ""),
        }
    version = str(version)
    out = {}
    for repository in repositories:
        tag = by_ref.get((repository, version), {"status": -1, "digest": "", "msg": "not asked"})
        pin = recorded.get(repository, "")
        pinned = by_ref.get((repository, pin), {}) if pin else {}
        name = f"{registry}/{repository}:{version}"
        source = sources.get(repository, "the record")
        if tag["status"] in (401, 403):
            error = f"registry {registry} refused the credentials ({auth}) for {name}"
        elif tag["status"] not in (200, 404):
            error = f"registry {registry} is down or unreachable ({name}): " + URL_CREDENTIALS.sub(r"\1", tag["msg"])
        elif pin and pinned.get("status") == 404:
            error = f"{name}: digest {pin} ({source}) is not in registry {registry}"
        elif pin and tag["status"] == 200 and tag["digest"] != pin:
            error = f"{name}: digest mismatch: the registry {registry} tags {tag['digest']}, {source} says {pin}"
        elif not pin and tag["status"] == 404:
            error = f"{name}: no such tag in registry {registry} (build it: make build VERSION={version})"
        else:
            error = ""
        digest = pin or tag["digest"]
        out[repository] = {
            "image": f"{registry}/{repository}@{digest}",
            "digest": digest,
            "source": source if pin else f"tag {version}",
            "error": error,
            "missing": tag["status"] == 404 and not pin,
        }
    return out


def errors(resolved: Mapping[str, Any], probe: object = False) -> list[str]:
    """The errors that stop the run. A probe (build.yml asking whether a version was
    built at this commit) takes a missing tag as an answer, not an error."""
    return [
        r["error"]
        for r in resolved.values()
        if r.get("error") and not (str(probe).lower() in ("1", "true", "yes") and r.get("missing"))
    ]
