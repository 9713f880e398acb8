"""cnt-deploy's verification probe. verify.yml runs it inside each cnt-backend container
(`python3 -c`), with the application's own python-socketio, redis and REDIS_URL, so it
speaks exactly the pub/sub format the instances speak.

  listen NONCE TIMEOUT PORT         connect a python-socketio client to this instance,
                                    register its sid in Redis, wait for the nonce's event
  emit NONCE EXPECTED TIMEOUT CHAN  wait until EXPECTED listeners registered, then emit the
                                    event to each of them through a write-only
                                    AsyncRedisManager (the external-emitter pattern), and
                                    read LiveKit's `nodes` hash
Each mode prints one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

EVENT = "cnt-verify"
KEY = "cnt:verify:{nonce}"


def redis_options() -> dict[str, Any]:
    options: dict[str, Any] = {"socket_timeout": 5, "socket_connect_timeout": 5}
    if os.environ.get("REDIS_SSL_CA_CERTS"):
        options["ssl_ca_certs"] = os.environ["REDIS_SSL_CA_CERTS"]
    return options


def redis_client():
    import redis.asyncio as aioredis

    return aioredis.Redis.from_url(os.environ["REDIS_URL"], **redis_options())


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> dict[int, Any]:
    """The protobuf fields of a message: varints as int, length-delimited as bytes."""
    fields: dict[int, Any] = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields[number], pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            fields[number] = data[pos : pos + length]
            pos += length
        elif wire == 1:
            fields[number], pos = data[pos : pos + 8], pos + 8
        elif wire == 5:
            fields[number], pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
    return fields


def decode_node(data: bytes) -> dict[str, Any]:
    """LiveKit's livekit.Node (livekit_internal.proto): id = 1, ip = 2, stats = 4;
    NodeStats: started_at = 1, updated_at = 2 (Unix seconds)."""
    node = _fields(data)
    stats = _fields(node.get(4, b""))
    return {
        "id": node.get(1, b"").decode(),
        "ip": node.get(2, b"").decode(),
        "updated_at": stats.get(2, 0),
    }


async def listen(nonce: str, timeout: float, port: int) -> dict[str, Any]:
    import socketio

    result: dict[str, Any] = {"instance": os.environ.get("INSTANCE_NAME", ""), "connected": False, "received": False}
    received = asyncio.Event()
    client = socketio.AsyncClient(reconnection=False)

    @client.on(EVENT)
    async def on_verify(data: Any) -> None:
        if isinstance(data, dict) and data.get("nonce") == nonce:
            result["received"] = True
            received.set()

    try:
        await client.connect(f"http://127.0.0.1:{port}", transports=["websocket"], wait_timeout=10)
        result["connected"] = True
        redis = redis_client()
        key = KEY.format(nonce=nonce)
        await redis.sadd(key, client.get_sid("/"))
        await redis.expire(key, 300)
        await redis.aclose()
        await asyncio.wait_for(received.wait(), timeout)
    except Exception as error:
        result["error"] = f"{type(error).__name__}: {error}"
    finally:
        if client.connected:
            await client.disconnect()
    return result


async def emit(nonce: str, expected: int, timeout: float, channel: str) -> dict[str, Any]:
    import socketio

    redis = redis_client()
    key = KEY.format(nonce=nonce)
    deadline = time.monotonic() + timeout
    sids: set[bytes] = set()
    while time.monotonic() < deadline:
        sids = await redis.smembers(key)
        if len(sids) >= expected:
            break
        await asyncio.sleep(0.2)
    manager = socketio.AsyncRedisManager(
        os.environ["REDIS_URL"], channel=channel, write_only=True, redis_options=redis_options()
    )
    for sid in sorted(sids):
        await manager.emit(EVENT, {"nonce": nonce}, to=sid.decode(), namespace="/")
    nodes = [decode_node(value) for value in (await redis.hgetall("nodes")).values()]
    now = int(time.time())
    await redis.aclose()
    return {"registered_listeners": len(sids), "nodes": nodes, "now": now}


def main(argv: list[str]) -> int:
    mode = argv[0]
    if mode == "listen":
        result = asyncio.run(listen(argv[1], float(argv[2]), int(argv[3])))
    elif mode == "emit":
        result = asyncio.run(emit(argv[1], int(argv[2]), float(argv[3]), argv[4]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
