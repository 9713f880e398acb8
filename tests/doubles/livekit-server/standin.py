"""TEST DOUBLE for the LiveKit server: not LiveKit. Used only by tests and the offline demo.

The real livekit/livekit-server image cannot be pulled on these machines. This stand-in
answers what the deployment checks and nothing more:
- `GET /` on the LiveKit port: 200 `OK`, like a healthy LiveKit node;
- a WebSocket upgrade on `/agent` (where agent workers register) is accepted and held
  open without a register response, so a LiveKit Agents worker stays "connecting"
  instead of retrying;
- it reads the --config file and refuses to start if it cannot (as LiveKit does).
It does NOT route rooms, register in Redis (`nodes` hash), speak WebRTC, or validate the
configuration's keys: checks of those report "not checked" when it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import signal
import sys

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
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
    server = await asyncio.start_server(handle, "0.0.0.0", args.port)
    print(f"LiveKit TEST DOUBLE listening on {args.port} (not a LiveKit server)", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
