"""plugins/modules/cnt_registry_digests.py: its requests against a stand-in registry on
loopback (HTTPS with a CA the test makes, basic auth), as the module sends them."""

from __future__ import annotations

import base64
import datetime
import http.server
import ipaddress
import ssl
import sys
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from plugins.loader import load

# The module imports its decisions as Ansible ships them to it (AnsiballZ).
sys.modules["ansible.module_utils.cnt_registry"] = load("module_utils/cnt_registry.py")
module = load("modules/cnt_registry_digests.py")

DIGEST = "sha256:" + "d" * 64
USER, PASSWORD = "puller", "registry-password-2718"


def certificate(tmp_path):
    """A self-signed certificate for 127.0.0.1: (its PEM, the key file, the cert file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test registry")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    key_file, cert_file = tmp_path / "key.pem", tmp_path / "cert.pem"
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_file.write_bytes(pem)
    return pem.decode(), key_file, cert_file


def serve(handler, context=None):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if context:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def registry(tmp_path):
    """A registry: the tag v2 of cnt-backend names DIGEST; /v2/moved/ redirects to a
    second server, which records whatever reaches it."""
    reached: list[dict] = []

    class Elsewhere(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            reached.append(dict(self.headers))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    elsewhere = serve(Elsewhere)

    class Registry(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                self.send_response(401)
            elif self.path.startswith("/v2/moved/"):
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.1:{elsewhere.server_port}/stolen")
            elif self.path in ("/v2/cnt-backend/manifests/v2", f"/v2/cnt-backend/manifests/{DIGEST}"):
                self.send_response(200)
                self.send_header("Docker-Content-Digest", DIGEST)
            else:
                self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    pem, key_file, cert_file = certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server = serve(Registry, context)
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(pem)
    yield f"127.0.0.1:{server.server_port}", str(ca_file), reached
    server.shutdown()
    elsewhere.shutdown()


def ask(address, ca_file, repository="cnt-backend", ref="v2", password=PASSWORD):
    params = {"username": USER, "password": password, "timeout": 5}
    return module.ask(address, repository, ref, params, ca_file)


def test_a_tag_answers_its_digest(registry):
    address, ca_file, _ = registry
    answer = ask(address, ca_file)
    assert answer == {"item": ["cnt-backend", "v2"], "status": 200, "docker_content_digest": DIGEST, "msg": ""}


def test_a_recorded_digest_is_asked_by_itself(registry):
    address, ca_file, _ = registry
    assert ask(address, ca_file, ref=DIGEST)["status"] == 200


def test_refused_credentials_and_a_missing_tag_are_answers_not_crashes(registry):
    address, ca_file, _ = registry
    assert ask(address, ca_file, password="wrong")["status"] == 401
    assert ask(address, ca_file, ref="v404")["status"] == 404


def test_a_redirect_is_not_followed_so_the_credentials_stay_with_the_registry(registry):
    address, ca_file, reached = registry
    answer = ask(address, ca_file, repository="moved")
    assert answer["status"] == 302
    assert reached == []


def test_a_registry_whose_certificate_the_ca_does_not_sign_is_unreachable(registry):
    address, _, _ = registry
    answer = ask(address, None)
    assert answer["status"] == -1
    assert "CERTIFICATE_VERIFY_FAILED" in answer["msg"] or "certificate verify failed" in answer["msg"]


def test_a_closed_port_is_unreachable_and_the_decision_says_so_without_the_password(registry):
    _, ca_file, _ = registry
    answer = ask("127.0.0.1:9", ca_file)
    assert answer["status"] == -1
    resolved = module.decide(
        [answer], registry="127.0.0.1:9", repositories=["cnt-backend"], version="v2", recorded={}, sources={}
    )
    problems = module.errors(resolved)
    assert len(problems) == 1 and problems[0].startswith("registry 127.0.0.1:9 is down or unreachable")
    assert PASSWORD not in problems[0]
