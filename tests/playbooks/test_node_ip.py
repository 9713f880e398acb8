"""LiveKit's node IP from EC2 instance metadata (IMDSv2), served here by a test endpoint."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

TOKEN = "imds-test-token"


class FakeImds(BaseHTTPRequestHandler):
    """IMDSv2: PUT /latest/api/token, then GETs that must carry the token."""

    addresses: ClassVar[dict[str, str]] = {}
    requests: ClassVar[list[str]] = []

    def do_PUT(self):
        self.requests.append(f"PUT {self.path}")
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            self._answer(200, TOKEN)
        else:
            self._answer(400, "")

    def do_GET(self):
        self.requests.append(f"GET {self.path}")
        if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
            self._answer(401, "")
            return
        name = self.path.removeprefix("/latest/meta-data/")
        if name in self.addresses:
            self._answer(200, self.addresses[name])
        else:
            self._answer(404, "")

    def _answer(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def imds():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeImds)
    FakeImds.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def discover(tmp_path, ansible_playbook, imds, **variables):
    out = tmp_path / "node_ip"
    url = f"http://127.0.0.1:{imds.server_address[1]}"
    # An empty inventory of its own (the repository's default, local, takes the IP from
    # facts); localhost stays implicit, so modules run with this Python.
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("", encoding="utf-8")
    result = ansible_playbook(
        "-i",
        str(inventory),
        "-e",
        json.dumps({"out_file": str(out), "cnt_config_imds_url": url, **variables}),
        "tests/playbooks/plays/node_ip.yml",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out.read_text()


def test_public_ipv4_from_instance_metadata_with_a_session_token(tmp_path, ansible_playbook, imds):
    FakeImds.addresses = {"public-ipv4": "203.0.113.10", "local-ipv4": "10.0.1.10"}
    assert discover(tmp_path, ansible_playbook, imds) == "203.0.113.10"
    assert FakeImds.requests[0] == "PUT /latest/api/token"


def test_private_ipv4_when_the_instance_has_no_public_address(tmp_path, ansible_playbook, imds):
    FakeImds.addresses = {"local-ipv4": "10.0.1.10"}
    assert discover(tmp_path, ansible_playbook, imds) == "10.0.1.10"


def test_inventory_value_wins_and_metadata_is_not_asked(tmp_path, ansible_playbook, imds):
    FakeImds.addresses = {"public-ipv4": "203.0.113.10"}
    assert discover(tmp_path, ansible_playbook, imds, cnt_livekit_node_ip="198.51.100.7") == "198.51.100.7"
    assert FakeImds.requests == []
