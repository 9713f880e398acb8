"""roles/cnt_status/files/host_status.py, the one command status.yml runs per host,
against a fake of Docker's Engine API on a unix socket (the fleet scenario runs it
against real engines): what it reports for a running, an exited, a restarting and a
missing container, the health endpoints, the audit log's last line, and that nothing
of a container's environment reaches its output."""

from __future__ import annotations

import http.server
import json
import socketserver
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "roles/cnt_status/files/host_status.py"
SECRET = "redis-password-in-the-environment-0123"


def container(state: dict, restarts: int = 0, version: str = "v7", image: str = "sha256:" + "a" * 64) -> dict:
    return {
        "Image": image,
        "RestartCount": restarts,
        "State": state,
        "Config": {
            "Image": "cnt-backend:v7",
            "Env": [f"REDIS_URL=rediss://:{SECRET}@redis:6379/0"],
            "Labels": {"cnt.version": version, "cnt.service": "cnt-backend", "maintainer": "someone"},
        },
    }


CONTAINERS = {
    "cnt-backend": container({"Status": "running", "Running": True, "StartedAt": "2026-11-28T02:00:00.123456789Z"}),
    "cnt-livekit-server": container(
        {"Status": "exited", "Running": False, "ExitCode": 137, "StartedAt": "2026-11-28T01:00:00Z"}
    ),
    "cnt-voice-agent": container(
        {"Status": "restarting", "Running": True, "Restarting": True, "StartedAt": "0001-01-01T00:00:00Z"},
        restarts=12,
    ),
}
IMAGES = {"sha256:" + "a" * 64: {"RepoDigests": ["registry.example/cnt-backend@sha256:" + "d" * 64]}}


class DockerApi(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        parts = self.path.split("/")
        if parts[1] == "containers" and parts[2] in CONTAINERS:
            self.answer(200, CONTAINERS[parts[2]])
        elif parts[1] == "images" and parts[2] in IMAGES:
            self.answer(200, IMAGES[parts[2]])
        else:
            self.answer(404, {"message": "No such object"})

    def answer(self, status: int, document: dict) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def address_string(self) -> str:
        return "docker"

    def log_message(self, *args) -> None:
        pass


class UnixHttpServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/health" else 503
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def report(tmp_path):
    socket_path = str(tmp_path / "docker.sock")
    docker = UnixHttpServer(socket_path, DockerApi)
    health = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    for server in (docker, health):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    audit = tmp_path / "cnt-deploy.log"
    # Longer than the block read from the end.
    audit.write_text("".join(f"2026-11-2{i % 9}T02:00:00Z run=r{i} result=deployed\n" for i in range(500)))
    port = health.server_address[1]
    config = {
        "containers": {
            "cnt-backend": f"http://127.0.0.1:{port}/health",
            "cnt-livekit-server": f"http://127.0.0.1:{port}/",
            "cnt-voice-agent": f"http://127.0.0.1:{port}/down",
            "cnt-missing": f"http://127.0.0.1:{port}/health",
        },
        "audit_log": str(audit),
        "docker_socket": socket_path,
    }
    run = subprocess.run([sys.executable, str(SCRIPT), json.dumps(config)], capture_output=True, text=True, check=False)
    docker.shutdown()
    health.shutdown()
    assert run.returncode == 0, run.stderr
    assert SECRET not in run.stdout + run.stderr
    return json.loads(run.stdout)


def test_a_running_container_its_version_image_digest_uptime_and_health(report):
    backend = report["containers"]["cnt-backend"]
    assert backend["state"] == "running" and backend["health"] == "healthy"
    assert backend["labels"] == {"cnt.version": "v7", "cnt.service": "cnt-backend"}
    assert backend["image_id"] == "sha256:" + "a" * 64 and backend["image"] == "cnt-backend:v7"
    assert backend["digest"] == "registry.example/cnt-backend@sha256:" + "d" * 64
    assert backend["restart_count"] == 0 and backend["started_at"] == "2026-11-28T02:00:00.123456789Z"
    assert backend["uptime_seconds"] > 0


def test_an_exited_a_restarting_and_a_missing_container(report):
    livekit = report["containers"]["cnt-livekit-server"]
    assert (livekit["state"], livekit["exit_code"], livekit["health"], livekit["uptime_seconds"]) == (
        "exited",
        137,
        "not running",
        None,
    )
    agent = report["containers"]["cnt-voice-agent"]
    assert (agent["state"], agent["restarting"], agent["restart_count"]) == ("restarting", True, 12)
    # Running, never started cleanly: no uptime; its health endpoint answers 503.
    assert agent["uptime_seconds"] is None and agent["health"] == "unhealthy (HTTP 503)"
    assert report["containers"]["cnt-missing"] == {"exists": False, "state": "missing", "health": "not running"}


def test_the_audit_logs_last_line(report):
    assert report["audit_last"] == "2026-11-24T02:00:00Z run=r499 result=deployed"
