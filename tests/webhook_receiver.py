"""A local HTTP receiver standing in for a chat webhook (Slack's incoming webhooks): it
records each JSON body POSTed to it, and answers with the status the test asks for."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self, url: str, server: ThreadingHTTPServer) -> None:
        self.url = url
        self.server = server
        # The bodies received, in order (decoded JSON; a body that is not JSON is kept as text).
        self.received: list = []
        self.paths: list[str] = []
        self.status = 200

    def events(self) -> list[str]:
        """The "cnt.event" field of each message, in order."""
        return [body.get("cnt", {}).get("event") for body in self.received if isinstance(body, dict)]


@contextmanager
def receiver(host: str = "127.0.0.1", path: str = "/hooks/T0001/B0001/secret-webhook-token-2718") -> Iterator[Receiver]:
    """A receiver on a free port of `host`; its URL carries a token in its path, as Slack's do."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            try:
                got.received.append(json.loads(body))
            except ValueError:
                got.received.append(body)
            got.paths.append(self.path)
            self.send_response(got.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    got = Receiver(f"http://{host}:{server.server_address[1]}{path}", server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()
