"""Small decisions of the operators' other playbooks and roles: logs.yml's merge of every
host's lines, the load balancer's state of a host (roles/cnt_lb), the images pruning
removes (cnt_rollout), the known_hosts file (known-hosts.yml), the mount holding Docker's
data (cnt_preflight), Docker's apt key fingerprints (docker) and a webhook's error
without its URL (cnt_notify).

Tested in tests/unit/plugins/filter/test_cnt_ops.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit


def cnt_logs_merge(results: Mapping[str, Any], *, container: str, grep: str = "", lines: object = 200) -> list[str]:
    """Every host's `docker logs --timestamps` lines, merged in time order, each prefixed
    `host | `; the last `lines` of each host, then of the merge. A host with no such
    container says so in one line. `grep` (a regular expression) keeps matching lines."""
    keep = int(str(lines))
    pattern = re.compile(grep) if grep else None
    rows: list[tuple[str, str, str]] = []
    for host, result in results.items():
        result = result or {}
        if int(result.get("rc", 1)) != 0:
            rows.append(("", host, f"(no container {container})"))
            continue
        host_rows = []
        for line in list(result.get("stdout_lines") or []) + list(result.get("stderr_lines") or []):
            if not line:
                continue
            stamp, _, text = line.partition(" ")
            if pattern is None or pattern.search(text):
                host_rows.append((stamp, host, text))
        rows.extend(sorted(host_rows)[-keep:])
    return [f"{host} | {stamp} {text}" for stamp, host, text in sorted(rows)[-keep:]]


def cnt_lb_haproxy_out(
    stats: Mapping[str, Iterable[Mapping[str, str]]], backends: Iterable[str], server: str
) -> list[str]:
    """Why HAProxy does not have `server` in service, or []: on every load balancer host
    (`stats`: {lb host: `show stat` rows}), each backend lists it and not in maintenance
    or drain. UP, or DOWN while a check fails, is in service: health is verify's part."""
    out = []
    for lb, rows in stats.items():
        rows = list(rows)
        for backend in backends:
            row = next((r for r in rows if r.get("pxname") == backend and r.get("svname") == server), None)
            if row is None:
                out.append(f"{lb}: {backend}/{server} is not configured")
            elif re.match(r"(MAINT|DRAIN)", row.get("status", "")):
                out.append(f"{lb}: {backend}/{server} is in {row['status']}")
    return out


def cnt_lb_alb_out(instance_target_groups: Iterable[Mapping[str, Any]], target_groups: Iterable[str]) -> list[str]:
    """Why the ALB does not have the instance in service, or []: registered in each of
    its target groups (names or ARNs), not draining or unused. `instance_target_groups`
    is community.aws.elb_target_info's answer for the instance."""
    known = list(instance_target_groups)
    out = []
    for group in target_groups:
        needle = group if group.startswith("arn:") else f":targetgroup/{group}/"
        found = [g for g in known if needle in str(g.get("target_group_arn", ""))]
        states = [t.get("target_health", {}).get("state") for g in found for t in g.get("targets") or []]
        if not states:
            out.append(f"{group}: the instance is not registered")
        elif any(s in ("draining", "unused") for s in states):
            out.append(f"{group}: the instance is " + ", ".join(str(s) for s in states))
    return out


def cnt_prunable_images(
    images: Iterable[Mapping[str, Any]], *, in_use: Iterable[str], keep: Iterable[str]
) -> list[dict]:
    """The images pruning may remove: not used by a container, with tags of versions
    outside `keep`. [{tags: [those tags], whole: every tag of the image goes, size}]."""
    in_use = set(in_use)
    keep = {str(v) for v in keep if v}
    out = []
    for image in images:
        if image.get("Id") in in_use:
            continue
        tags = [t for t in image.get("RepoTags") or [] if ":" in t]
        old = [t for t in tags if t.rsplit(":", 1)[1] not in keep]
        if old:
            out.append({"tags": old, "whole": len(old) == len(tags), "size": int(image.get("Size") or 0)})
    return out


def cnt_versions_to_keep(deployed: Iterable[str], *, current: Iterable[object], count: object) -> list[str]:
    """The versions whose images stay: the ones running or being deployed, and the last
    `count` versions deployed (`deployed` oldest first, as the audit log lists them)."""
    latest = []
    for version in reversed(list(deployed)):
        if version not in latest:
            latest.append(version)
    keep = [str(v) for v in current if v not in (None, "")] + latest[: int(str(count))]
    return [v for i, v in enumerate(keep) if v and v not in keep[:i]]


def cnt_known_hosts_keys(hosts: Iterable[str], published: Mapping[str, str], instance_ids: Mapping[str, Any]) -> dict:
    """{host: its published keys ("type key" lines)} for the hosts that published any:
    under their instance ID (the aws_ec2 inventory's), else under their inventory name."""
    out = {}
    for host in hosts:
        for name in (instance_ids.get(host), host):
            if name and name in published:
                out[host] = published[name]
                break
    return out


def cnt_known_hosts_lines(keys: Mapping[str, str], addresses: Mapping[str, Any]) -> list[str]:
    """known_hosts lines: each host's address (ansible_host, else its name) and each of
    its keys."""
    return [
        f"{addresses.get(host) or host} {key}" for host, text in keys.items() for key in str(text).splitlines() if key
    ]


def cnt_mount_of(mounts: Iterable[Mapping[str, Any]], path: str) -> dict:
    """The mount holding `path`: the longest mount point that is a prefix of it
    ({mount: '', size_available: 0} when none is)."""
    best: Mapping[str, Any] = {"mount": "", "size_available": 0}
    target = path.rstrip("/") + "/"
    for mount in mounts:
        point = str(mount.get("mount", ""))
        if target.startswith(point.rstrip("/") + "/") and len(point) > len(best["mount"]):
            best = mount
    return dict(best)


def cnt_gpg_fingerprints(colon_lines: Iterable[str]) -> list[str]:
    """The primary keys' fingerprints in `gpg --with-colons` output: the fpr record
    right after each pub record (subkeys' fpr records follow sub records)."""
    out, after_pub = [], False
    for line in colon_lines:
        fields = line.split(":")
        if fields[0] == "fpr" and after_pub and len(fields) > 9:
            out.append(fields[9])
        after_pub = fields[0] == "pub"
    return out


def cnt_hide_url(message: object, url: str, limit: int = 200) -> str:
    """`message` without `url` or any part of it that could carry its token (path, query,
    host and credentials), nor any other URL; at most `limit` characters."""
    text = str(message or "")
    parts = urlsplit(url) if url else None
    pieces = [url] + ([parts.path, parts.query, parts.netloc] if parts else [])
    for piece in sorted((p for p in pieces if p and len(p) >= 4), key=len, reverse=True):
        text = text.replace(piece, "<hidden>")
    text = re.sub(r"\w+://\S+", "<hidden>", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class FilterModule:
    """The operators' playbooks' smaller decisions."""

    def filters(self):
        return {
            "cnt_logs_merge": cnt_logs_merge,
            "cnt_lb_haproxy_out": cnt_lb_haproxy_out,
            "cnt_lb_alb_out": cnt_lb_alb_out,
            "cnt_prunable_images": cnt_prunable_images,
            "cnt_versions_to_keep": cnt_versions_to_keep,
            "cnt_known_hosts_keys": cnt_known_hosts_keys,
            "cnt_known_hosts_lines": cnt_known_hosts_lines,
            "cnt_mount_of": cnt_mount_of,
            "cnt_gpg_fingerprints": cnt_gpg_fingerprints,
            "cnt_hide_url": cnt_hide_url,
        }
