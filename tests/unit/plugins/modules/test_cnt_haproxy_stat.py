"""plugins/modules/cnt_haproxy_stat.py against a stand-in admin socket that answers
`show stat` as HAProxy 2.6 does (a '# ' header line, then CSV)."""

from __future__ import annotations

import socket
import threading

import pytest

from plugins.loader import load

stat = load("modules/cnt_haproxy_stat.py")

SHOW_STAT = (
    "# pxname,svname,qcur,status,wretr,econ,hrsp_5xx,\n"
    "cnt_backend,FRONTEND,,OPEN,,,0,\n"
    "cnt_backend,app-1,0,UP,0,0,0,\n"
    "cnt_backend,app-2,0,MAINT,1,2,3,\n"
    "cnt_livekit,app-1,0,UP,0,0,0,\n"
    "\n"
)


@pytest.fixture
def admin_socket(tmp_path):
    path = tmp_path / "admin.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(1)
    asked = []

    def serve():
        connection, _ = server.accept()
        asked.append(connection.recv(1024))
        connection.sendall(SHOW_STAT.encode())
        connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield str(path), asked
    thread.join(timeout=5)
    server.close()


def test_show_stat_returns_a_row_per_server(admin_socket):
    path, asked = admin_socket
    rows = stat.show_stat(path)
    assert asked == [b"show stat\n"]
    assert [(r["pxname"], r["svname"], r["status"]) for r in rows] == [
        ("cnt_backend", "FRONTEND", "OPEN"),
        ("cnt_backend", "app-1", "UP"),
        ("cnt_backend", "app-2", "MAINT"),
        ("cnt_livekit", "app-1", "UP"),
    ]
    assert rows[2]["wretr"] == "1" and rows[2]["hrsp_5xx"] == "3"


def test_show_stat_keeps_only_the_backends_asked_for(admin_socket):
    path, _ = admin_socket
    assert {r["pxname"] for r in stat.show_stat(path, ["cnt_livekit"])} == {"cnt_livekit"}


def test_a_missing_socket_raises(tmp_path):
    with pytest.raises(OSError):
        stat.show_stat(str(tmp_path / "none.sock"))
