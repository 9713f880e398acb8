"""Real processes on loopback for the integration tests: a TLS + AUTH Redis standing in
for ElastiCache (Debian's redis-server), and instances of the reference backend."""

from __future__ import annotations

import datetime
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[2]
BACKEND = ROOT / "examples" / "backend"
# An AUTH token with the characters ElastiCache allows and URLs mangle.
REDIS_TOKEN = "Test-Auth-Token!&#$^<>-0123456789"
# TLS only (no plaintext port), AUTH, loopback, nothing written to disk.
REDIS_ARGS = ["--port", "0", "--bind", "127.0.0.1", "--tls-auth-clients", "no", "--requirepass", REDIS_TOKEN]
REDIS_ARGS += ["--save", "", "--appendonly", "no"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port} after {timeout}s")


@dataclass
class Tls:
    ca: Path
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@pytest.fixture(scope="session")
def tls(tmp_path_factory) -> Tls:
    """A throwaway CA and a certificate for localhost signed by it."""
    directory = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("cnt test CA"))
        .issuer_name(_name("cnt test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = Tls(directory / "ca.pem", directory / "redis.pem", directory / "redis.key")
    paths.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return paths


@dataclass
class Redis:
    port: int
    tls: Tls

    def url(self, password: str = REDIS_TOKEN) -> str:
        from urllib.parse import quote

        return f"rediss://:{quote(password, safe='')}@localhost:{self.port}/0"


@pytest.fixture(scope="session")
def redis_tls(tls, tmp_path_factory) -> Iterator[Redis]:
    """redis-server with TLS only (no plaintext port) and an AUTH token, like ElastiCache."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server; .ci/run does)")
    port = free_port()
    directory = tmp_path_factory.mktemp("redis")
    tls_args = ["--tls-cert-file", str(tls.cert), "--tls-key-file", str(tls.key), "--tls-ca-cert-file", str(tls.ca)]
    process = subprocess.Popen(
        [binary, *REDIS_ARGS, *tls_args, "--tls-port", str(port), "--dir", str(directory)],
        stdout=(directory / "redis.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, process)
        yield Redis(port, tls)
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass
class Backend:
    port: int
    name: str
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def health(self) -> tuple[int, dict]:
        import json

        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=10) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)


@pytest.fixture
def start_backend(tmp_path) -> Iterator:
    """Start reference backend instances (uvicorn) with the given environment."""
    started: list[Backend] = []

    def start(name: str, env: dict[str, str]) -> Backend:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=BACKEND,
            env={"PATH": os.environ["PATH"], "INSTANCE_NAME": name, "APP_VERSION": "test", **env},
            stdout=(tmp_path / f"{name}.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        backend = Backend(port, name, process)
        started.append(backend)
        wait_for_port(port, process)
        return backend

    yield start
    for backend in started:
        backend.process.terminate()
        backend.process.wait(timeout=10)
