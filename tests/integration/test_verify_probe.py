"""The verification probe (roles/cnt_verify/files/probe.py), run exactly as verify.yml runs
it inside each backend container (`python3 -c <probe> ...`, REDIS_URL from the
environment), here against two reference backends on a TLS + AUTH Redis."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

PROBE = (ROOT / "roles" / "cnt_verify" / "files" / "probe.py").read_text(encoding="utf-8")


def run_probe(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", PROBE, *args],
        env={"PATH": "/usr/bin:/bin", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def result(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return json.loads(out)


def backend_env(redis_url: str, ca: Path, name: str) -> dict[str, str]:
    return {"REDIS_URL": redis_url, "REDIS_SSL_CA_CERTS": str(ca), "INSTANCE_NAME": name}


def test_each_instance_receives_the_event_emitted_into_redis(redis_tls, start_backend):
    env = {name: backend_env(redis_tls.url(), redis_tls.tls.ca, name) for name in ("a", "b")}
    backends = [start_backend(name, env[name]) for name in ("a", "b")]
    listeners = [run_probe(env[b.name], "listen", "nonce-1", "15", str(b.port)) for b in backends]
    emitter = result(run_probe(env["a"], "emit", "nonce-1", "2", "15", "socketio"))
    heard = [result(listener) for listener in listeners]
    assert emitter["registered_listeners"] == 2
    assert [(h["instance"], h["connected"], h["received"]) for h in heard] == [("a", True, True), ("b", True, True)]


def test_an_instance_on_another_redis_database_is_not_counted(redis_tls, start_backend):
    """The probe can fail: an instance whose Redis differs (here db 1) hears nothing."""
    good = backend_env(redis_tls.url(), redis_tls.tls.ca, "good")
    stray = backend_env(redis_tls.url().replace("/0", "/1"), redis_tls.tls.ca, "stray")
    backends = [start_backend("good", good), start_backend("stray", stray)]
    listeners = [
        run_probe(e, "listen", "nonce-2", "6", str(b.port)) for e, b in zip((good, stray), backends, strict=True)
    ]
    emitter = result(run_probe(good, "emit", "nonce-2", "2", "4", "socketio"))
    heard = [result(listener) for listener in listeners]
    # The stray listener registered in db 1, so the emitter (db 0) waited in vain for it.
    assert emitter["registered_listeners"] == 1
    assert [h["received"] for h in heard] == [True, False]
