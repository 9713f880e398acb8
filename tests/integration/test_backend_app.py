"""The reference backend against a TLS + AUTH Redis: what "instances coordinate" means.

Two real instances (uvicorn) share one Redis; real python-socketio clients connect to
each. An event emitted into the Redis channel by a write-only AsyncRedisManager (the
external-emitter pattern verify.yml uses) reaches both; an event a client sends on one
instance reaches a client on the other.
"""

from __future__ import annotations

import asyncio

import socketio

CHANNEL = "socketio"


async def connect(backend, received: list) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)

    @client.on("*")
    async def any_event(event, data):
        received.append((event, data))

    await client.connect(backend.url, transports=["websocket"], wait_timeout=10)
    return client


async def wait_until(predicate, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.05)


def instance_env(redis_tls, password=None) -> dict[str, str]:
    url = redis_tls.url() if password is None else redis_tls.url(password)
    return {"REDIS_URL": url, "REDIS_SSL_CA_CERTS": str(redis_tls.tls.ca)}


def test_health_reports_a_real_redis_round_trip_over_tls_and_auth(redis_tls, start_backend):
    backend = start_backend("a", instance_env(redis_tls))
    status, body = backend.health()
    assert status == 200
    assert body["redis"] == "ok"
    assert body["socketio_manager"] == "AsyncRedisManager"


def test_health_fails_when_redis_refuses_the_credentials(redis_tls, start_backend):
    backend = start_backend("wrong-token", instance_env(redis_tls, password="not-the-token-0123456789"))
    status, body = backend.health()
    assert status == 503
    assert body["status"] == "unhealthy"
    assert body["redis"].startswith("error: ")


def test_without_redis_url_a_single_instance_manager_serves(start_backend):
    status, body = start_backend("solo", {}).health()
    assert (status, body["redis"], body["socketio_manager"]) == (200, "disabled", "AsyncManager")


def test_events_cross_instances_through_redis(redis_tls, start_backend):
    a = start_backend("a", instance_env(redis_tls))
    b = start_backend("b", instance_env(redis_tls))

    async def scenario():
        on_a, on_b = [], []
        client_a = await connect(a, on_a)
        client_b = await connect(b, on_b)
        try:
            await wait_until(lambda: ("welcome" in dict(on_a)) and ("welcome" in dict(on_b)))
            assert dict(on_a)["welcome"]["instance"] == "a"
            assert dict(on_b)["welcome"]["instance"] == "b"

            # External emitter: write-only manager on the same channel, no server of its own.
            emitter = socketio.AsyncRedisManager(
                redis_tls.url(), channel=CHANNEL, write_only=True, redis_options={"ssl_ca_certs": str(redis_tls.tls.ca)}
            )
            await emitter.emit("deploy_check", {"nonce": "n-1"})
            expected = ("deploy_check", {"nonce": "n-1"})
            await wait_until(lambda: expected in on_a and expected in on_b)

            # A client on a broadcasts; b's client hears it from a.
            await client_a.emit("broadcast", {"text": "hello from a"})
            await wait_until(lambda: ("broadcast", {"from": "a", "data": {"text": "hello from a"}}) in on_b)
        finally:
            await client_a.disconnect()
            await client_b.disconnect()

    asyncio.run(scenario())
