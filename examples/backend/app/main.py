"""CNT reference backend: FastAPI + python-socketio, instances coordinated through Redis.

Production's shape, small enough to read in a minute:
- with REDIS_URL set, Socket.IO uses `socketio.AsyncRedisManager` on the channel
  `socketio`, so an event emitted on one instance (or into Redis by an external
  emitter) reaches clients connected to every instance; without it, a single-instance
  manager;
- `GET /health` answers 200 only when the instance can serve: with Redis configured, a
  real round trip (AUTH, TLS and PING through the same URL) must succeed, else 503;
- REDIS_SSL_CA_CERTS names a CA bundle for a Redis whose certificate is not signed by a
  public CA (the local demo's); ElastiCache needs none.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import redis.asyncio as aioredis
import socketio
from fastapi import FastAPI
from fastapi.responses import JSONResponse

CHANNEL = "socketio"
REDIS_URL = os.environ.get("REDIS_URL", "")
APP_VERSION = os.environ.get("APP_VERSION", "dev")
INSTANCE = os.environ.get("INSTANCE_NAME") or socket.gethostname()

logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper())
log = logging.getLogger("cnt.backend")


def redis_options() -> dict[str, Any]:
    """Options for every Redis client of this process (manager and health check)."""
    options: dict[str, Any] = {"socket_timeout": 5, "socket_connect_timeout": 5}
    ca_file = os.environ.get("REDIS_SSL_CA_CERTS")
    if ca_file:
        options["ssl_ca_certs"] = ca_file
    return options


if REDIS_URL:
    client_manager: socketio.AsyncManager = socketio.AsyncRedisManager(
        REDIS_URL, channel=CHANNEL, redis_options=redis_options()
    )
else:
    client_manager = socketio.AsyncManager()

sio = socketio.AsyncServer(async_mode="asgi", client_manager=client_manager, cors_allowed_origins=[])
api = FastAPI(title="cnt-backend", version=APP_VERSION)
_health_redis: aioredis.Redis | None = None


async def redis_state() -> str:
    """'disabled' without REDIS_URL, else 'ok' or why the round trip failed."""
    global _health_redis
    if not REDIS_URL:
        return "disabled"
    if _health_redis is None:
        _health_redis = aioredis.Redis.from_url(REDIS_URL, **redis_options())
    try:
        await _health_redis.ping()
    # Any failure means not healthy; the answer says which.
    except Exception as error:
        return f"error: {type(error).__name__}"
    return "ok"


@api.get("/health")
async def health() -> JSONResponse:
    state = await redis_state()
    healthy = state in ("ok", "disabled")
    body = {
        "status": "ok" if healthy else "unhealthy",
        "version": APP_VERSION,
        "instance": INSTANCE,
        "redis": state,
        "socketio_manager": type(client_manager).__name__,
    }
    return JSONResponse(body, status_code=200 if healthy else 503)


@api.get("/version")
async def version() -> dict[str, str]:
    return {"version": APP_VERSION, "instance": INSTANCE}


@sio.event
async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
    log.info("client %s connected to %s", sid, INSTANCE)
    await sio.emit("welcome", {"instance": INSTANCE, "version": APP_VERSION}, to=sid)


@sio.event
async def broadcast(sid: str, data: Any) -> None:
    """Relay a client's message to every client on every instance."""
    await sio.emit("broadcast", {"from": INSTANCE, "data": data})


app = socketio.ASGIApp(sio, other_asgi_app=api)
