"""The deploy lock (roles/cnt_rollout) in a real TLS + AUTH Redis: one run holds it, a
second run is refused naming the holder, the holder renews and releases it, a break takes
it over; ansible-pull runs share it with each other, never with a deploy, and wait for
it. The lock's key and value are read back with redis-py."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest
import redis
from conftest import REDIS_TOKEN, ROOT

KEY = "cnt:deploy-lock:test"


@pytest.fixture
def lock(redis_tls, ansible_playbook):
    client = redis.Redis(
        host="localhost", port=redis_tls.port, password=REDIS_TOKEN, ssl=True, ssl_ca_certs=str(redis_tls.tls.ca)
    )
    client.delete(KEY)
    connection = {
        "host": "localhost",
        "port": redis_tls.port,
        "db": 0,
        "tls": True,
        "username": "",
        "password": REDIS_TOKEN,
        "ca_cert": "",
    }

    def run(entry: str, run_id: str, *extra: str) -> subprocess.CompletedProcess:
        return ansible_playbook(
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            str(ROOT / "tests" / "integration" / "lock.yml"),
            "-e",
            f"entry={entry} run={run_id} ca={redis_tls.tls.ca}",
            "-e",
            json.dumps({"redis": json.dumps(connection)}),
            *extra,
            env={"USER": "operator-a"},
        )

    yield run, client
    client.delete(KEY)


def test_one_run_holds_the_lock_and_a_second_is_refused_naming_it(lock):
    run, client = lock
    first = run("lock", "run-a")
    assert first.returncode == 0, first.stdout
    value = client.get(KEY).decode()
    assert value.startswith("run-a actor=operator-a version=v9 ")
    assert 0 < client.ttl(KEY) <= 1800

    second = run("lock", "run-b")
    assert second.returncode != 0
    assert "Another deploy of test holds the lock" in second.stdout and "run-a actor=operator-a" in second.stdout
    assert REDIS_TOKEN not in second.stdout
    assert client.get(KEY).decode() == value

    # The holder renews it (each batch) without changing who holds it, then releases it.
    client.expire(KEY, 100)
    assert run("lock", "run-a").returncode == 0
    assert client.get(KEY).decode() == value and client.ttl(KEY) > 100
    assert run("unlock", "run-b").returncode == 0
    assert client.get(KEY) is not None, "another run must not release the lock"
    assert run("unlock", "run-a").returncode == 0
    assert client.get(KEY) is None


def test_a_break_takes_over_a_dead_runs_lock(lock):
    run, client = lock
    client.set(KEY, "run-dead actor=someone version=v1", ex=1800)
    taken = run("lock", "run-c", "-e", "cnt_rollout_lock_break=true")
    assert taken.returncode == 0, taken.stdout
    assert client.get(KEY).decode().startswith("run-c ")


def test_a_run_whose_lock_expired_can_neither_renew_nor_release_the_next_runs_lock(lock):
    """Compare-and-set: run-a's lock expired (a slow host), run-b took it; run-a's renew
    and release must leave run-b's lock as it is (a GET-then-SET would overwrite it)."""
    run, client = lock
    assert run("lock", "run-a").returncode == 0
    client.delete(KEY)  # expired
    assert run("lock", "run-b").returncode == 0
    value = client.get(KEY).decode()
    assert value.startswith("run-b ")
    renew = run("lock", "run-a")
    assert renew.returncode != 0 and "run-b actor=operator-a" in renew.stdout
    assert run("unlock", "run-a").returncode == 0
    assert client.get(KEY).decode() == value and client.ttl(KEY) > 0


def test_pulls_share_the_lock_with_each_other_never_with_a_deploy(lock):
    """ansible-pull runs (local.yml) take it in shared mode: two at once, while a deploy is
    refused naming them; a pull started while a deploy holds it waits, and goes on once
    the deploy released it."""
    run, client = lock
    shared = ("-e", "cnt_rollout_lock_shared=true")
    assert run("lock", "pull-a", *shared).returncode == 0
    assert run("lock", "pull-b", *shared).returncode == 0
    holders = [m.decode() for m in client.zrange(KEY + ":shared", 0, -1)]
    assert sorted(h.split()[0] for h in holders) == ["pull-a", "pull-b"]
    assert client.get(KEY) is None

    deploy = run("lock", "run-d")
    assert deploy.returncode != 0
    assert "pull-a actor=operator-a" in deploy.stdout and "pull-b actor=operator-a" in deploy.stdout
    assert client.get(KEY) is None

    assert run("unlock", "pull-a", *shared).returncode == 0
    assert run("unlock", "pull-b", *shared).returncode == 0
    assert client.zcard(KEY + ":shared") == 0
    assert run("lock", "run-d").returncode == 0

    refused = run("lock", "pull-c", *shared)
    assert refused.returncode != 0 and "run-d actor=operator-a" in refused.stdout
    assert client.zcard(KEY + ":shared") == 0

    assert run("unlock", "run-d").returncode == 0


def test_a_pull_waits_while_a_deploy_holds_the_lock_then_takes_it(lock):
    run, client = lock
    client.set(KEY, "run-e actor=someone version=v2", ex=1800)
    results: dict = {}

    def pull() -> None:
        results["pull"] = run("lock", "pull-w", "-e", "cnt_rollout_lock_shared=true", "-e", "cnt_rollout_lock_wait=60")

    thread = threading.Thread(target=pull)
    thread.start()
    time.sleep(15)
    assert client.zcard(KEY + ":shared") == 0, "the pull must wait while the deploy holds the lock"
    client.delete(KEY)
    thread.join(timeout=90)
    assert results["pull"].returncode == 0, results["pull"].stdout
    assert "FAILED - RETRYING" in results["pull"].stdout
    assert [m.decode().split()[0] for m in client.zrange(KEY + ":shared", 0, -1)] == ["pull-w"]
    client.delete(KEY + ":shared")
