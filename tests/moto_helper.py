"""moto in server mode on loopback: the AWS emulator the unit tests point boto3 and the
amazon.aws / community.aws modules at (no test talks to real AWS). A module of its own,
not conftest: tests/integration has a conftest too, and `from conftest import` picks one."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def moto_server(log: Path) -> Iterator[str]:
    """moto in server mode on a free loopback port (the AWS emulator no test may bypass);
    yields its endpoint URL once it accepts connections."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)
