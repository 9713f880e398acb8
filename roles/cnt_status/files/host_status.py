"""One application host's state, read in one go (status.yml runs it over one connection):
each service container as Docker's Engine API inspects it (over its unix socket, only
what status.yml shows: never its environment or command line), each service's health
endpoint, and the last line of the deploy audit log. Prints JSON; changes nothing.

    python3 host_status.py '{"containers": {"cnt-backend": "http://127.0.0.1:8000/health", ...},
                             "audit_log": "/var/log/cnt-deploy.log", "docker_socket": "/run/docker.sock"}'
"""

from __future__ import annotations

import datetime
import http.client
import json
import re
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request

# The labels shown: the deploy's own (cnt.service, cnt.version, cnt.config-sha256,
# cnt.test-double); none holds a secret.
LABEL_PREFIX = "cnt."


class DockerSocket(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.path)


def get(docker_socket: str, path: str) -> dict | None:
    """A GET of Docker's Engine API: the JSON document, or None when it answers 404."""
    connection = DockerSocket(docker_socket)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status == 404:
        return None
    if response.status != 200:
        raise RuntimeError(f"Docker answered {response.status} for {path}: {body[:200]!r}")
    return json.loads(body)


def inspect(docker_socket: str, name: str) -> dict | None:
    """The container's inspect document (None: no such container), with its image's
    registry digests (none for an image built or loaded on the host)."""
    document = get(docker_socket, f"/containers/{urllib.parse.quote(name)}/json")
    if document is not None:
        image = get(docker_socket, f"/images/{urllib.parse.quote(document.get('Image', ''), safe=':')}/json") or {}
        document["RepoDigests"] = image.get("RepoDigests") or []
    return document


def parse_time(value: str) -> datetime.datetime | None:
    """Docker's RFC 3339 times carry nanoseconds; Python's parser takes microseconds.
    Docker's zero time (a container never started) is None."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", value or "")
    if not match or value.startswith("0001-"):
        return None
    seconds, fraction, zone = match.groups()
    text = seconds + (f".{fraction[:6]:0<6}" if fraction else "") + ("+00:00" if zone == "Z" else zone)
    return datetime.datetime.fromisoformat(text)


def health(url: str, timeout: float = 5) -> str:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return "healthy" if response.status == 200 else f"unhealthy (HTTP {response.status})"
    except urllib.error.HTTPError as error:
        return f"unhealthy (HTTP {error.code})"
    except (OSError, http.client.HTTPException):
        return "unhealthy (no answer)"


def container_state(document: dict | None, url: str, now: datetime.datetime) -> dict:
    if document is None:
        return {"exists": False, "state": "missing", "health": "not running"}
    state = document.get("State", {})
    started = parse_time(state.get("StartedAt", ""))
    running = bool(state.get("Running"))
    labels = document.get("Config", {}).get("Labels") or {}
    return {
        "exists": True,
        "state": state.get("Status", "unknown"),
        "restarting": bool(state.get("Restarting")),
        "restart_count": int(document.get("RestartCount", 0)),
        "exit_code": state.get("ExitCode"),
        "started_at": state.get("StartedAt", ""),
        "uptime_seconds": int((now - started).total_seconds()) if running and started else None,
        "image_id": document.get("Image", ""),
        "image": document.get("Config", {}).get("Image", ""),
        "digest": (document.get("RepoDigests") or [""])[0],
        "labels": {key: value for key, value in labels.items() if key.startswith(LABEL_PREFIX)},
        "health": (health(url) if url else "no health check") if running else "not running",
    }


def last_line(path: str) -> str:
    """The file's last line, read from its end (the audit log only grows)."""
    try:
        with open(path, "rb") as log:
            log.seek(0, 2)
            size = log.tell()
            log.seek(max(0, size - 4096))
            lines = log.read().decode(errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    return lines[-1] if lines else ""


def main(argv: list[str]) -> int:
    config = json.loads(argv[1])
    now = datetime.datetime.now(datetime.timezone.utc)  # noqa: UP017 (hosts may run Python 3.9: Amazon Linux 2023)
    out = {
        "now": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "containers": {
            name: container_state(inspect(config.get("docker_socket", "/run/docker.sock"), name), url, now)
            for name, url in config["containers"].items()
        },
        "audit_last": last_line(config.get("audit_log", "/var/log/cnt-deploy.log")),
    }
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
