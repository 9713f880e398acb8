"""TEST DOUBLE for the LiveKit server: not LiveKit. Used only by tests and the offline demo.

The real livekit/livekit-server image cannot be pulled on these machines. This stand-in
answers what the deployment checks and nothing more:
- `GET /` on the LiveKit port: 200 `OK`, like a healthy LiveKit node;
- a WebSocket upgrade on `/agent` (where agent workers register) is accepted and held
  open without a register response, so a LiveKit Agents worker stays "connecting"
  instead of retrying;
- rooms, as far as a drain needs them: RoomService's Twirp calls `CreateRoom`,
  `ListRooms` and `DeleteRoom` (JSON, `POST /twirp/livekit.RoomService/<call>`) keep a
  list of room names. Access tokens are not checked;
- the drain: on SIGTERM it stops taking new rooms (CreateRoom answers 503
  `unavailable`) and exits (status 0) once its last room is deleted, at once if it has
  none; a second SIGTERM exits at once, as LiveKit does;
- it reads the --config file and refuses to start if it cannot (as LiveKit does).
It does NOT route rooms, register in Redis (`nodes` hash), speak WebRTC, or validate the
configuration's keys: checks of those report "not checked" when it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import signal
import sys

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TWIRP = "/twirp/livekit.RoomService/"


class Node:
    """The rooms this node holds and whether it drains; `done` is set when it may exit."""

    def __init__(self) -> None:
        self.rooms: dict[str, dict] = {}
        self.draining = False
        self.done = asyncio.Event()

    def terminate(self) -> None:
        if self.draining:
            print("LiveKit TEST DOUBLE: second signal, exiting now", flush=True)
            self.done.set()
            return
        self.draining = True
        print(f"LiveKit TEST DOUBLE: draining, {len(self.rooms)} room(s) open, no new ones", flush=True)
        self.check_drained()

    def check_drained(self) -> None:
        if self.draining and not self.rooms:
            print("LiveKit TEST DOUBLE: drained, exiting", flush=True)
            self.done.set()

    def room_call(self, call: str, body: dict) -> tuple[int, dict]:
        if call == "CreateRoom":
            if self.draining:
                return 503, {"code": "unavailable", "msg": "node is draining: no new rooms"}
            name = body.get("name") or ""
            if not name:
                return 400, {"code": "invalid_argument", "msg": "name is required"}
            self.rooms.setdefault(name, {"name": name, "sid": "RM_" + hashlib.sha1(name.encode()).hexdigest()[:12]})
            return 200, self.rooms[name]
        if call == "ListRooms":
            return 200, {"rooms": list(self.rooms.values())}
        if call == "DeleteRoom":
            self.rooms.pop(body.get("room") or "", None)
            self.check_drained()
            return 200, {}
        return 404, {"code": "bad_route", "msg": f"no call {call}"}


async def handle(node: Node, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        writer.close()
        return
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = [*lines[0].split(" "), "", "", ""][:3]
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    if path.startswith("/agent") and headers.get("upgrade", "").lower() == "websocket":
        accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + GUID).encode()).digest()).decode()
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
        )
        await writer.drain()
        # Hold the connection: read and drop frames until the worker goes away.
        while await reader.read(65536):
            pass
    elif method == "POST" and path.startswith(TWIRP):
        length = int(headers.get("content-length", "0"))
        try:
            body = json.loads(await reader.readexactly(length) or b"{}") if length else {}
        except (ValueError, asyncio.IncompleteReadError):
            body = None
        status, answer = (
            (400, {"code": "malformed", "msg": "JSON body"})
            if body is None
            else node.room_call(path.removeprefix(TWIRP), body)
        )
        data = json.dumps(answer).encode()
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 503: "Service Unavailable"}[status]
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + data
        )
    elif method == "GET" and path in ("/", ""):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK")
    else:
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    await writer.drain()
    writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description="LiveKit server TEST DOUBLE")
    parser.add_argument("--config", required=True)
    parser.add_argument("--port", type=int, default=7880)
    args = parser.parse_args()
    with open(args.config, encoding="utf-8") as config:
        if not config.read().strip():
            sys.exit(f"{args.config} is empty")
    node = Node()
    server = await asyncio.start_server(lambda r, w: handle(node, r, w), "0.0.0.0", args.port)
    print(f"LiveKit TEST DOUBLE listening on {args.port} (not a LiveKit server)", flush=True)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, node.terminate)
    loop.add_signal_handler(signal.SIGINT, node.terminate)
    async with server:
        await node.done.wait()


if __name__ == "__main__":
    asyncio.run(main())
