"""The fleet after `deploy.yml` (converge, then idempotence), then the playbooks run as
an operator runs them: a dry run (--check --diff) of a new version and configuration, a
preflight failure on one host, a rolling redeploy of a new version under load through
HAProxy, a broken configuration that rolls back by itself, and a rollback to the first
version under load. Tests run in file order: each builds on the last.

Every playbook run here runs at -vvv, and its whole output is searched for every secret
of the inventory (and the tests' own), as is, encoded and base64-encoded: 0 hits."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import shlex
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import boto3
import pytest
import requests
import socketio
import testinfra
import yaml

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
PROJECT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
INVENTORY = EPHEMERAL / "inventory"
REPORT = EPHEMERAL / "verify.json"
APPS = ["fleet-app-1", "fleet-app-2"]
LB = "http://172.30.58.20:8000"
SERVICES = ["cnt-backend", "cnt-livekit-server", "cnt-voice-agent"]
# HAProxy's own counters for the backend servers, read through its admin socket: `wretr`
# (requests retried because a server refused them), `econ` (connection errors),
# `hrsp_5xx`. A drained host is never sent a request while it restarts, so none of them
# moves; without the drain, HAProxy's retries hide the refusals from the client (checked:
# 0 failed requests either way, wretr +4/+6), so the client-side count alone proves nothing.
# Not `eresp`: the websockets a drained host still holds are cut when its backend stops
# (the clients reconnect elsewhere), and HAProxy counts those as response errors.
# Read on the load balancer host by the deploy's own code: show_stat() of
# plugins/modules/cnt_haproxy_stat.py (what cnt_lb's status step runs), not a copy.
HAPROXY_STAT_SOURCE = (PROJECT / "plugins/modules/cnt_haproxy_stat.py").read_text()


def haproxy_rows(backend: str = "cnt_backend") -> list[dict[str, str]]:
    """The servers of one HAProxy backend, as `show stat` rows."""
    script = (
        f"ns = {{'__name__': 'cnt_haproxy_stat'}}; exec({HAPROXY_STAT_SOURCE!r}, ns); import json; "
        f"print(json.dumps(ns['show_stat']('/run/haproxy/admin.sock', [{backend!r}])))"
    )
    out = testinfra.get_host("docker://fleet-lb").check_output("python3 -c " + shlex.quote(script))
    return [row for row in json.loads(out) if row["svname"] not in ("FRONTEND", "BACKEND")]


def haproxy_status() -> str:
    """Each backend server's state (UP, MAINT...), a line each: a drained host shows MAINT."""
    return "\n".join(f"{row['svname']} {row['status']}" for row in haproxy_rows())


# Every secret of the fleet's inventory (inventories/local: its vault file), and those the
# tests add; each run's output must hold none, in any form.
_spec = importlib.util.spec_from_file_location("secret_scan", PROJECT / "tests/secret_scan.py")
secret_scan = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(secret_scan)
SECRETS = [
    str(v) for v in yaml.safe_load((PROJECT / "inventories/local/group_vars/all/vault.yml").read_text()).values()
]
TEST_SECRETS: list[str] = []

# A local HTTP receiver stands in for the chat's webhook (deploy notifications, hooks).
_spec = importlib.util.spec_from_file_location("webhook_receiver", PROJECT / "tests/webhook_receiver.py")
webhook_receiver = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(webhook_receiver)
# The example hook (examples/hooks/chat.yml) at every point of a deploy.
# The token in the receivers' URLs (a chat webhook's URL is its secret).
WEBHOOK_TOKEN = "secret-webhook-token-2718"
CHAT_PATH = "/chat/hooks/secret-chat-token-1618"
HOOK_POINTS = ("before", "after_host", "success", "failure", "rollback")
CHAT_HOOKS = {point: ["examples/hooks/chat.yml"] for point in HOOK_POINTS}

# moto's server on the controller stands in for SSM Parameter Store (the version store).
_spec = importlib.util.spec_from_file_location("moto_helper", PROJECT / "tests/moto_helper.py")
_moto_helper = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_moto_helper)
moto_server = _moto_helper.moto_server


def plan_of(output: str) -> str:
    """The plan deploy.yml printed (its "Print the plan" task), whitespace folded (the
    YAML callback folds long lines). Not the whole output: at -vvv that also holds every
    task's facts (cnt_service_plans names every container)."""
    section = output.split("TASK [Print the plan]", 1)[1]
    section = re.split(r"\n(?:TASK|PLAY) \[", section, maxsplit=1)[0]
    return " ".join(section.split())


def app(name: str):
    return testinfra.get_host(f"docker://{name}")


def playbook_command(playbook: str, args: tuple[str, ...], extra_inventory: Path | None = None) -> list[str]:
    """ansible-playbook at -vvv against this scenario's fleet."""
    inventories = ["-i", str(INVENTORY)] + (["-i", str(extra_inventory)] if extra_inventory else [])
    return ["ansible-playbook", "-vvv", *inventories, str(PROJECT / "playbooks" / playbook), *args]


def playbook_env(env: dict | None = None) -> dict:
    env = dict(os.environ, ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0", **(env or {}))
    env["CNT_DEMO_STATE_DIR"] = str(EPHEMERAL / "demo")
    return env


def deploy(
    *args: str, extra_inventory: Path | None = None, playbook: str = "deploy.yml", env: dict | None = None
) -> subprocess.CompletedProcess:
    """playbooks/deploy.yml (or another playbook) against this scenario's fleet, as an
    operator runs it."""
    run = subprocess.run(
        playbook_command(playbook, args, extra_inventory),
        cwd=PROJECT,
        env=playbook_env(env),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    # Every run, whatever it does: no secret at -vvv (dry runs, failures, rollbacks too).
    found = secret_scan.leaks(run.stdout + run.stderr, SECRETS + TEST_SECRETS)
    assert found == [], f"{playbook} {' '.join(args)} printed secrets: {found}"
    return run


def labels(name: str) -> dict[str, dict[str, str]]:
    """Each service container's labels on the host (cnt.version, cnt.config-sha256...)."""
    script = "; ".join(f"docker inspect --format '{{{{json .Config.Labels}}}}' {s}" for s in SERVICES)
    lines = app(name).check_output(script).splitlines()
    return dict(zip(SERVICES, (json.loads(line) for line in lines), strict=True))


def haproxy_errors() -> dict[str, tuple[int, ...]]:
    """Per backend server: (retries, connection errors, 5xx answers)."""
    return {row["svname"]: tuple(int(row[k] or 0) for k in ("wretr", "econ", "hrsp_5xx")) for row in haproxy_rows()}


def test_the_no_op_deploy_verified_health_and_load_balancer_and_skipped_the_socketio_probe():
    """The report of the last run, idempotence: a deploy whose plan changed nothing."""
    report = json.loads(REPORT.read_text())
    assert report["hosts"] == {h: {"backend": "healthy", "livekit": "healthy", "voice_agent": "healthy"} for h in APPS}
    assert report["load_balancer"] == {h: "in service" for h in APPS}
    # Nothing changed, so what the probe proves did not change: not probed (the rolling
    # redeploy below proves it).
    assert report["socketio"]["checked"] is False and report["socketio"]["delivered"] is None
    # The LiveKit test double runs here: the multi-node check says so instead of passing.
    assert report["livekit_nodes"]["registered"] is None
    assert report["livekit_nodes"]["checked"] is False


def test_every_host_runs_the_first_version_and_the_no_op_rolled_nothing():
    for name in APPS:
        assert {service: label["cnt.version"] for service, label in labels(name).items()} == {
            "cnt-backend": "demo-1",
            "cnt-livekit-server": "stand-in",
            "cnt-voice-agent": "demo-1",
        }
        audit = app(name).file("/var/log/cnt-deploy.log").content_string.splitlines()
        # converge deployed; idempotence planned nothing for the host, so it never
        # entered the rolling play (no drain, no audit line).
        assert [line.split("result=")[1] for line in audit] == ["deployed"]
        assert all("version=demo-1" in line and "environment=local" in line for line in audit)


REGISTRY = "172.30.58.10:5000"
REGISTRY_CA = str(EPHEMERAL / "demo/tls/ca.pem")
REGISTRY_USER = (
    "cnt-demo",
    yaml.safe_load((PROJECT / "inventories/local/group_vars/all/vault.yml").read_text())["vault_cnt_registry_password"],
)
MANIFESTS = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def registry_digest(repository: str, tag: str, auth: tuple[str, str] | None = REGISTRY_USER) -> requests.Response:
    """The test registry's answer for repository:tag (TLS with the demo's CA)."""
    return requests.head(
        f"https://{REGISTRY}/v2/{repository}/manifests/{tag}",
        auth=auth,
        verify=REGISTRY_CA,
        timeout=10,
        headers={"Accept": MANIFESTS},
    )


def container_image(host: str, name: str) -> str:
    return app(host).check_output(f"docker inspect --format '{{{{.Config.Image}}}}' {name}")


def test_both_hosts_run_the_same_digests_pulled_from_the_registry_with_auth_over_tls():
    for name in ["cnt-backend", "cnt-voice-agent"]:
        digest = registry_digest(name, "demo-1").headers["Docker-Content-Digest"]
        for host in APPS:
            # Run by digest: the one the registry's demo-1 tag names, on both hosts.
            assert container_image(host, name) == f"{REGISTRY}/{name}@{digest}"
            image = json.loads(app(host).check_output(f"docker image inspect {REGISTRY}/{name}@{digest}"))[0]
            assert f"{REGISTRY}/{name}@{digest}" in image["RepoDigests"]
    # The registry answers only with credentials, and only over TLS; the hosts' engines
    # logged in and trust its CA where Docker looks.
    assert registry_digest("cnt-backend", "demo-1", auth=None).status_code == 401
    try:
        plain = requests.get(f"http://{REGISTRY}/v2/", timeout=5).status_code
    except requests.ConnectionError:
        plain = None
    assert plain in (None, 400)
    for host in APPS:
        assert REGISTRY in json.loads(app(host).file("/root/.docker/config.json").content_string)["auths"]
        assert app(host).file(f"/etc/docker/certs.d/{REGISTRY}/ca.crt").exists
        assert not app(host).file("/srv/cnt-images").exists


def test_building_a_version_the_registry_has_at_this_commit_builds_nothing():
    run = deploy("-e", '{"cnt_registry_build_versions": ["demo-1"]}', playbook="build.yml")
    assert run.returncode == 0, run.stdout[-3000:]
    recap = re.search(r"localhost\s+: ok=\d+\s+changed=(\d+)", run.stdout)
    assert recap and recap.group(1) == "0", run.stdout[-3000:]
    # The version is in the registry at this commit: its images are not built again.
    build = run.stdout.split("TASK [cnt_registry : build_version | Build the images]")[1].split("TASK [")[0]
    assert "skipping: [localhost]" in build, build
    assert not re.search(r"^(ok|changed): \[localhost\]", build, re.MULTILINE), build


# The real registry's answers, end to end: refused credentials (401), an unknown tag
# (404), the registry down. A recorded digest the registry lacks or its tag no longer
# names is a decision on those same answers: tests/unit/plugins/module_utils.
@pytest.mark.parametrize("case", ["refused credentials", "unknown tag", "registry down"])
def test_a_bad_registry_input_stops_the_plan_before_any_container_changes_naming_image_and_registry(case):
    wrong_password = "wrong-registry-password-31415"
    TEST_SECRETS.append(wrong_password)
    extra, expected = {
        "refused credentials": (
            {"cnt_registry_password": wrong_password},
            f"registry {REGISTRY} refused the credentials (password) for {REGISTRY}/cnt-backend:demo-1",
        ),
        "unknown tag": (
            {"cnt_app_version": "demo-404"},
            f"{REGISTRY}/cnt-backend:demo-404: no such tag in registry {REGISTRY}",
        ),
        "registry down": (
            {"cnt_registry": "172.30.58.10:5999"},
            "registry 172.30.58.10:5999 is down or unreachable (172.30.58.10:5999/cnt-backend:demo-1)",
        ),
    }[case]
    before = {n: containers(n) for n in APPS}
    run = deploy("-e", json.dumps(extra))
    assert run.returncode != 0
    flat = " ".join(run.stdout.replace("'", "").split())
    assert expected in flat, flat[-3000:]
    # Stopped in the plan: no container changed.
    assert {n: containers(n) for n in APPS} == before


def test_haproxy_sends_requests_to_both_hosts():
    seen = Counter(requests.get(f"{LB}/version", timeout=5).json()["instance"] for _ in range(20))
    assert set(seen) == set(APPS)


def status() -> tuple[subprocess.CompletedProcess, dict]:
    """playbooks/status.yml, and the report it wrote."""
    run = deploy(playbook="status.yml")
    return run, json.loads((EPHEMERAL / "status.json").read_text())


def test_status_reports_both_hosts_on_the_deployed_version_and_exits_0():
    run, report = status()
    assert run.returncode == 0, run.stdout[-3000:]
    assert report["expected"] == {"version": "demo-1", "source": "the inventory (no version store)"}
    assert report["flagged"] == {}
    for name in APPS:
        host = report["hosts"][name]
        containers = host["containers"]
        assert {s: c["labels"]["cnt.version"] for s, c in containers.items()} == {
            "cnt-backend": "demo-1",
            "cnt-livekit-server": "stand-in",
            "cnt-voice-agent": "demo-1",
        }
        for service, c in containers.items():
            assert (c["state"], c["health"], c["restart_count"]) == ("running", "healthy", 0), service
            assert c["image_id"] == app(name).check_output(f"docker inspect --format '{{{{.Image}}}}' {service}")
            assert c["uptime_seconds"] > 0
        assert host["load_balancer"]["in_service"] is True
        assert host["audit_last"] == audit_of(name)[-1]
    flat = " ".join(run.stdout.split())
    assert "Status of local: 2 hosts, 0 flagged. The fleet should run demo-1" in flat


def fleet_state() -> dict:
    """What a run may change: containers (ID, labels), configuration files, audit logs,
    and whether HAProxy has every host UP."""
    state = {}
    for name in APPS:
        host = app(name)
        ids = host.check_output("docker ps -q --no-trunc " + " ".join(f"--filter name=^{s}$" for s in SERVICES))
        state[name] = (
            sorted(ids.split()),
            labels(name),
            host.check_output("sha256sum /etc/cnt/backend.env /etc/cnt/livekit.yaml"),
            host.file("/var/log/cnt-deploy.log").content_string,
        )
    state["haproxy"] = haproxy_status()
    return state


def test_dry_run_shows_masked_config_diffs_and_the_restarts_and_changes_nothing(tmp_path):
    """deploy.yml --check --diff of a new version with a new setting and a new secret."""
    before = fleet_state()
    env_file = app("fleet-app-1").file("/etc/cnt/backend.env").content_string
    secrets = {"demo-redis-auth-token-0123456789", "demo-livekit-secret-0123456789abcdef0123", "dry-run-token-314159"}
    assert {"demo-redis-auth-token-0123456789", "demo-livekit-secret-0123456789abcdef0123"} <= {
        s for s in secrets if s in env_file
    }, "the fleet's backend.env should hold the secrets this test looks for"
    extra = tmp_path / "change.yml"
    # Host variables: an inventory file's group variables lose to the linked group_vars.
    # Secrets whose names say nothing (OPENAI_API_KEY, DB_PASS...), a DSN, a multi-line
    # PEM key, LiveKit keys whose names hold `:` and `#`.
    TEST_SECRETS[:] = [*HOSTILE_ENV.values(), *HOSTILE_LIVEKIT_KEYS.values(), "dry-run-token-314159"]
    change = {
        "cnt_backend_env": {
            "SECRET_KEY": "{{ vault_cnt_backend_secret_key }}",
            "FEATURE_DRY_RUN": "on",
            "PAYMENTS_TOKEN": "dry-run-token-314159",
            **HOSTILE_ENV,
        },
        "cnt_livekit_extra_keys": HOSTILE_LIVEKIT_KEYS,
    }
    extra.write_text(yaml.safe_dump({"all": {"hosts": {name: change for name in APPS}}}))
    run = deploy("--check", "--diff", "-e", "cnt_app_version=demo-2", extra_inventory=extra)
    TEST_SECRETS.clear()
    assert run.returncode == 0, run.stdout[-3000:]
    out = run.stdout + run.stderr
    flat = " ".join(out.split())  # the YAML callback folds long messages
    # The configuration diff, secrets masked: the new line, the new secret's line masked,
    # and no secret anywhere (REDIS_URL's password, LiveKit's secret, the new token).
    # Every value of cnt_backend_env is masked, whatever its name; the keys show.
    assert "+FEATURE_DRY_RUN=********(" in out
    assert "+PAYMENTS_TOKEN=********(" in out
    for key in HOSTILE_ENV:
        assert f"+{key}=********(" in out
    for key in HOSTILE_LIVEKIT_KEYS:
        assert f"+  {json.dumps(key)}: ********(" in out
    for secret in secrets:
        assert secret not in out
    # (deploy() found none of them, nor any line of the PEM key, in any form.)
    # Which containers would restart, and why: LiveKit for its new keys only.
    backend_why = "version demo-1 -> demo-2, its configuration changes (/etc/cnt/backend.env)"
    assert f"cnt-backend would be recreated: {backend_why}" in flat
    assert "cnt-voice-agent would be recreated: version demo-1 -> demo-2" in flat
    assert "cnt-livekit-server would be recreated: its configuration changes (/etc/cnt/livekit.yaml)" in flat
    plan = plan_of(out)
    assert plan.count("would restart cnt-backend, cnt-livekit-server, cnt-voice-agent") == 2, plan
    assert plan.count("would restart") == 2, plan
    assert "DRY RUN (--check), nothing was changed: Plan: deploy" in flat
    assert "of demo-2 to local: 2 of 2 hosts change" in flat
    # The rolling plays enter no host in a dry run.
    assert re.search(r"Roll the canary \(one host\)\] \** skipping: no hosts", flat)
    assert re.search(r"Roll the other hosts, batch by batch\] \** skipping: no hosts", flat)
    # And nothing changed: containers, files, audit logs, HAProxy (no host drained).
    assert fleet_state() == before


HOSTILE_PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n"
    "-----END PRIVATE KEY-----"
)
HOSTILE_ENV = {
    "OPENAI_API_KEY": "sk-proj-openai-0123456789abcdef",
    "DEEPGRAM_API_KEY": "deepgram-0123456789abcdef",
    "DB_PASS": "db-pass-0123456789abcdef",
    "SMTP_PWD": "smtp-pwd-0123456789abcdef",
    "DATABASE_URL": "postgresql://app:dsn-password-0123456789@db.internal:5432/app",
    "TLS_PRIVATE_PEM": HOSTILE_PEM,
}
HOSTILE_LIVEKIT_KEYS = {
    "rot:ation#1": "livekit-extra-secret-colon-0123456789ab",
    "key#2": "livekit-extra-secret-hash-0123456789abc",
}


def test_a_host_failing_preflight_stops_the_rollout_before_any_host_changes(tmp_path):
    before = {n: (labels(n), app(n).file("/etc/cnt/backend.env").sha256sum) for n in APPS}
    # fleet-app-2's disk is "too small": its preflight fails; fleet-app-1's passes.
    extra = tmp_path / "full-disk.yml"
    extra.write_text("all:\n  hosts:\n    fleet-app-2:\n      cnt_preflight_min_free_gib: 100000\n")
    run = deploy("-e", "cnt_app_version=demo-2", extra_inventory=extra)
    assert run.returncode != 0
    assert "Preflight:" in run.stdout and "fleet-app-2" in run.stdout
    assert "PLAY [Deploy | Roll" not in run.stdout
    after = {n: (labels(n), app(n).file("/etc/cnt/backend.env").sha256sum) for n in APPS}
    assert after == before
    # No run left the deploy lock behind: the next deploy (below) takes it.


class Load:
    """HTTP requests through HAProxy and Socket.IO clients held through it, in the
    background, counting every failure."""

    def __init__(self, clients: int = 6) -> None:
        self.stop = threading.Event()
        self.requests = 0
        self.failures: list[str] = []
        self.versions: list[str] = []
        self.connects: Counter[int] = Counter()
        self.connected: dict[int, bool] = {}
        self.clients = clients
        self.threads = [threading.Thread(target=self._http, daemon=True) for _ in range(2)]
        self.threads.append(threading.Thread(target=lambda: asyncio.run(self._socketio()), daemon=True))

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _http(self) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            try:
                answer = session.get(f"{LB}/version", timeout=5)
                answer.raise_for_status()
                self.versions.append(answer.json()["version"])
            except Exception as error:
                self.failures.append(f"{type(error).__name__}: {error}")
            self.requests += 1
            time.sleep(0.02)

    async def _socketio(self) -> None:
        async def hold(index: int) -> None:
            client = socketio.AsyncClient(reconnection=True, reconnection_delay=0.5, reconnection_delay_max=2)

            @client.event
            async def connect() -> None:
                self.connects[index] += 1
                self.connected[index] = True

            @client.event
            async def disconnect(*_args) -> None:
                self.connected[index] = False

            await client.connect(LB, transports=["websocket"], wait_timeout=10)
            while not self.stop.is_set():
                await asyncio.sleep(0.2)
            await client.disconnect()

        await asyncio.gather(*(hold(i) for i in range(self.clients)))


def test_rolling_redeploy_under_load_drops_no_request_and_every_client_reconnects():
    errors_before = haproxy_errors()
    with Load() as load, webhook_receiver.receiver() as notified, webhook_receiver.receiver(path=CHAT_PATH) as chat:
        TEST_SECRETS.extend([notified.url, chat.url, CHAT_PATH, WEBHOOK_TOKEN])
        time.sleep(3)
        assert all(load.connected.get(i) for i in range(load.clients)), "clients did not connect"
        hooks = {"cnt_notify_webhook_url": notified.url, "chat_webhook_url": chat.url, "cnt_deploy_hooks": CHAT_HOOKS}
        run = deploy("-e", "cnt_app_version=demo-2", "-e", json.dumps(hooks))
        time.sleep(5)
        connected_at_end = dict(load.connected)
    assert run.returncode == 0, run.stdout[-3000:]
    # The webhook heard the deploy start and succeed, with the run's facts.
    assert notified.events() == ["start", "success"]
    start, success = (body["cnt"] for body in notified.received)
    assert start["version"] == success["version"] == "demo-2" and start["run"] == success["run"]
    assert start["hosts"] == APPS and success["result"] == "deployed"
    verified = f"Deploy {success['run']} of demo-2 to local: done, verified: {', '.join(APPS)}"
    assert notified.received[1]["text"] == verified
    # The example hook ran at each point, with the same facts (after_host once per host).
    points = [(b["cnt_deploy_event"]["point"], b["cnt_deploy_event"]["host"]) for b in chat.received]
    assert points == [("before", ""), ("after_host", "fleet-app-1"), ("after_host", "fleet-app-2"), ("success", "")]
    assert {b["cnt_deploy_event"]["run"] for b in chat.received} == {success["run"]}
    assert chat.received[1]["text"].endswith("after_host fleet-app-1, deployed")
    assert load.failures == []
    # HAProxy never sent a request to a host while it restarted (see haproxy_errors).
    assert haproxy_errors() == errors_before
    assert load.requests >= 200
    # Served throughout, first the old version, then the new one.
    assert load.versions[0] == "demo-1" and load.versions[-1] == "demo-2"
    # The canary first, alone: proven with the fleet while the other host still ran the
    # old version (an event its python-socketio wrote into Redis reached both), baked,
    # checked again; only then the other host.
    assert (
        "Order: canary fleet-app-1 first, verified with the fleet, baked 5 s; then batches of 1."
        " On failure: revert the hosts already on demo-2 to demo-1"
    ) in plan_of(run.stdout)
    canary = json.loads((EPHEMERAL / "verify-canary.json").read_text())
    assert canary["versions"] == {"fleet-app-1": "demo-2", "fleet-app-2": "demo-1"}
    assert canary["socketio"] == {"expected": 2, "delivered": 2}
    baked = json.loads((EPHEMERAL / "verify-bake.json").read_text())
    assert baked["load_balancer"] == {h: "in service" for h in APPS}
    order = [
        run.stdout.index(marker)
        for marker in (
            "PLAY [Deploy | Roll the canary (one host)]",
            "TASK [Bake (let the canary serve before the rest follow)]",
            "PLAY [Deploy | Roll the other hosts, batch by batch]",
            "PLAY [Deploy | Verify the fleet]",
            "PLAY [Deploy | Release the lock, record the version, summarise]",
        )
    ]
    assert order == sorted(order)
    # Each host rolled once (the canary is not rolled again with the others).
    run_id = re.search(r"cnt_deploy_run_id: (\S+)", run.stdout).group(1)
    for name in APPS:
        assert [line.endswith("result=deployed") for line in audit_of(name) if f"run={run_id} " in line] == [True]
    # Both backends restarted, so every client lost its connection once and came back.
    assert all(load.connects[i] >= 2 for i in range(load.clients)), load.connects
    assert all(connected_at_end.values()) and len(connected_at_end) == load.clients


def test_after_the_rollout_every_host_runs_the_new_version_and_verify_passed():
    for name in APPS:
        assert labels(name)["cnt-backend"]["cnt.version"] == "demo-2"
        assert labels(name)["cnt-voice-agent"]["cnt.version"] == "demo-2"
        last = app(name).file("/var/log/cnt-deploy.log").content_string.splitlines()[-1]
        assert "version=demo-2" in last and last.endswith("result=deployed")
    report = json.loads(REPORT.read_text())
    assert report["socketio"] == {"expected": 2, "delivered": 2}
    assert report["load_balancer"] == {h: "in service" for h in APPS}
    healthy = {"backend": "healthy", "livekit": "healthy", "voice_agent": "healthy"}
    assert all(services == healthy for services in report["hosts"].values())


def test_logs_merge_the_backend_lines_of_both_hosts_in_time_order():
    """logs.yml after the rolling redeploy: the clients under load connected to both
    backends, and each said so in its log."""
    since = ("-e", "cnt_logs_service=backend", "-e", "cnt_logs_since=30m", "-e", "cnt_logs_lines=2000")
    run = deploy(*since, playbook="logs.yml")
    assert run.returncode == 0, run.stdout[-3000:]
    lines = (EPHEMERAL / "logs-cnt-backend.log").read_text().splitlines()
    rows = [(line.split(" | ", 1)[0], *line.split(" | ", 1)[1].split(" ", 1)) for line in lines]
    assert {host for host, _, _ in rows} == set(APPS)
    stamps = [stamp for _, stamp, _ in rows]
    assert stamps == sorted(stamps) and len(stamps) >= 10
    # Each line is one its host's container wrote, with Docker's timestamp.
    for name in APPS:
        written = set(app(name).check_output("docker logs --timestamps --since 30m cnt-backend 2>&1").splitlines())
        written = {line.rstrip() for line in written}
        assert {f"{stamp} {text}".rstrip() for host, stamp, text in rows if host == name} <= written
    # GREP keeps the matching lines, still from both hosts.
    matching = deploy(*since, "-e", json.dumps({"cnt_logs_grep": r"client \S+ connected to"}), playbook="logs.yml")
    assert matching.returncode == 0, matching.stdout[-3000:]
    kept = (EPHEMERAL / "logs-cnt-backend.log").read_text().splitlines()
    assert kept and all(re.search(r"client \S+ connected to fleet-app-[12]$", line) for line in kept), kept[:5]
    assert {line.split(" | ")[0] for line in kept} == set(APPS)


def test_verify_stack_and_validate_print_no_secret_at_vvv(tmp_path):
    """The other playbooks an operator runs on a fleet (deploy() scans each output)."""
    assert deploy(playbook="verify.yml").returncode == 0
    # The version the fleet runs (the inventory still says demo-1): nothing to change.
    stack = deploy("--limit", "fleet-app-2", "-e", "cnt_app_version=demo-2", playbook="stack.yml")
    assert stack.returncode == 0, stack.stdout[-3000:]
    assert re.search(r"fleet-app-2 +: ok=\d+ +changed=0 ", stack.stdout), stack.stdout[-2000:]
    validate = deploy("-e", json.dumps({"render_dir": str(tmp_path / "render")}), playbook="validate.yml")
    assert validate.returncode == 0, validate.stdout[-3000:]
    # The rendered files hold the secrets (the run's output does not).
    assert "SECRET_KEY=" in (tmp_path / "render" / "fleet-app-1" / "backend.env").read_text()


def test_a_broken_configuration_rolls_back_by_itself_and_the_failure_prints_no_secret(tmp_path):
    """A setting the backend cannot start with (LOG_LEVEL=bogus): its health gate fails,
    the previous container and files come back, the run fails saying so. deploy() scanned
    the -vvv output of all of it (the failing container's environment holds every secret)."""
    before = {n: (labels(n), app(n).file("/etc/cnt/backend.env").sha256sum) for n in APPS}
    extra = tmp_path / "broken.yml"
    broken = {"cnt_backend_env": {"SECRET_KEY": "{{ vault_cnt_backend_secret_key }}", "LOG_LEVEL": "bogus"}}
    extra.write_text(yaml.safe_dump({"all": {"hosts": {name: broken for name in APPS}}}))
    with webhook_receiver.receiver() as notified:
        TEST_SECRETS.extend([notified.url, WEBHOOK_TOKEN])
        knobs = {"cnt_backend_health_timeout": 15, "cnt_notify_webhook_url": notified.url}
        run = deploy("-e", "cnt_app_version=demo-2", "-e", json.dumps(knobs), extra_inventory=extra)
    assert run.returncode != 0
    flat = " ".join(run.stdout.split())
    assert "cnt-backend demo-2 failed: no healthy answer" in flat
    # The webhook heard it start, the canary's backend roll back by itself, the run fail;
    # without the failing container's log lines.
    assert notified.events() == ["start", "rollback", "failure"]
    rollback, failure = notified.received[1], notified.received[2]
    assert rollback["cnt"]["host"] == "fleet-app-1" and rollback["cnt"]["result"] == "rolled back"
    brief = (
        "Deploying demo-2 to fleet-app-1 failed: cnt-backend demo-2 failed: no healthy answer from"
        " http://127.0.0.1:8000/health within 15s. Rolled back to the previous container (demo-2),"
        " which answers its health check again."
    )
    assert rollback["cnt"]["detail"] == brief
    assert failure["text"].endswith(f"FAILED. {brief} The version store is unchanged.")
    assert "Traceback" not in json.dumps(notified.received)
    assert "Rolled back to the previous container (demo-2), which answers its health check again." in flat
    assert "Unknown level: 'BOGUS'" in run.stdout
    # The first host rolled back (containers and files as before), the second was never touched.
    after = {n: (labels(n), app(n).file("/etc/cnt/backend.env").sha256sum) for n in APPS}
    assert after == before
    assert "result=failed" in last_audit("fleet-app-1") and "result=failed" not in last_audit("fleet-app-2")


def test_rollback_to_a_version_never_deployed_is_refused_before_anything_changes():
    before = fleet_state()
    run = deploy("-e", "cnt_app_version=demo-9", playbook="rollback.yml")
    assert run.returncode != 0
    flat = " ".join(run.stdout.split())
    assert "demo-9 was never deployed on these hosts" in flat
    assert "Versions they deployed: demo-1, demo-2." in flat
    assert "PLAY [Deploy | Roll" not in run.stdout
    assert fleet_state() == before


def test_rollback_under_load_drains_gates_audits_and_records_the_version(tmp_path):
    """rollback.yml back to demo-1, through the deploy path, with the version store on
    (moto's SSM on the controller stands in for Parameter Store)."""
    aws = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    errors_before = haproxy_errors()
    with moto_server(tmp_path / "moto.log") as endpoint, Load() as load:
        time.sleep(3)
        store = ("-e", "cnt_version_store=ssm", "-e", "cnt_aws_region=us-east-1")
        run = deploy(
            "-e", "cnt_app_version=demo-1", *store,
            playbook="rollback.yml",
            env={**aws, "AWS_ENDPOINT_URL": endpoint},
        )  # fmt: skip
        time.sleep(5)
        ssm = boto3.client(
            "ssm",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        recorded = ssm.get_parameter(Name="/cnt/local/app_version")["Parameter"]["Value"]
        # status.yml compares the fleet with the version store.
        in_store = deploy(*store, playbook="status.yml", env={**aws, "AWS_ENDPOINT_URL": endpoint})
        stored = json.loads((EPHEMERAL / "status.json").read_text())
    assert run.returncode == 0, run.stdout[-3000:]
    assert in_store.returncode == 0, in_store.stdout[-3000:]
    assert stored["expected"] == {"version": "demo-1", "source": "the version store (/cnt/local/app_version)"}
    assert stored["flagged"] == {}
    assert "Rolling back to demo-1, deployed here before." in " ".join(run.stdout.split())
    assert load.failures == [] and load.requests >= 200
    assert haproxy_errors() == errors_before
    assert load.versions[0] == "demo-2" and load.versions[-1] == "demo-1"
    assert recorded == "demo-1"
    for name in APPS:
        assert labels(name)["cnt-backend"]["cnt.version"] == "demo-1"
        assert labels(name)["cnt-voice-agent"]["cnt.version"] == "demo-1"
        last = app(name).file("/var/log/cnt-deploy.log").content_string.splitlines()[-1]
        assert "action=rollback version=demo-1 result=deployed" in last
    report = json.loads(REPORT.read_text())
    assert report["socketio"] == {"expected": 2, "delivered": 2}
    # Recorded only once the whole fleet passed its verification.
    verified = run.stdout.index("PLAY [Deploy | Verify the fleet]")
    assert verified < run.stdout.index("TASK [Record the version", verified)


def test_a_version_whose_second_host_fails_reverts_the_fleet_under_load_and_keeps_the_version_store(tmp_path):
    """demo-2 with a setting fleet-app-2's backend cannot start with: the canary
    (fleet-app-1) rolls, passes, bakes; fleet-app-2 fails its health gate and rolls back by
    itself; the revert takes fleet-app-1 back to demo-1, drained. Under load, through
    HAProxy: 0 failed requests, HAProxy's counters unchanged, the version store unchanged.
    First, a --limit run: it never writes the environment's version."""
    aws = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    store = ("-e", "cnt_version_store=ssm", "-e", "cnt_aws_region=us-east-1")
    extra = tmp_path / "second-host-broken.yml"
    broken = {"cnt_backend_env": {"SECRET_KEY": "{{ vault_cnt_backend_secret_key }}", "LOG_LEVEL": "bogus"}}
    extra.write_text(yaml.safe_dump({"all": {"hosts": {"fleet-app-2": broken}}}))
    with moto_server(tmp_path / "moto.log") as endpoint:
        env = {**aws, "AWS_ENDPOINT_URL": endpoint}
        ssm = boto3.client("ssm", endpoint_url=endpoint, **{k.lower(): v for k, v in aws.items() if "KEY" in k},
                           region_name="us-east-1")  # fmt: skip
        limited = deploy("--limit", "fleet-app-1", *store, env=env)
        assert limited.returncode == 0, limited.stdout[-3000:]
        assert ssm.describe_parameters()["Parameters"] == []
        ssm.put_parameter(Name="/cnt/local/app_version", Value="demo-1", Type="String")
        # Images of a version older than the hosts' last two: a host that rolls removes them.
        for name in APPS:
            app(name).check_output(
                f"docker tag cnt-backend:demo-1 {OLD[0]} && docker tag cnt-voice-agent:demo-1 {OLD[1]}"
            )
        errors_before = haproxy_errors()
        with Load() as load:
            time.sleep(3)
            with webhook_receiver.receiver() as notified:
                TEST_SECRETS.extend([notified.url, WEBHOOK_TOKEN])
                knobs = ("-e", "cnt_backend_health_timeout=15", "-e", "cnt_image_keep=2")
                knobs += ("-e", json.dumps({"cnt_notify_webhook_url": notified.url}))
                run = deploy("-e", "cnt_app_version=demo-2", *knobs, *store, extra_inventory=extra, env=env)
            time.sleep(5)
        recorded = ssm.get_parameter(Name="/cnt/local/app_version")["Parameter"]
    assert run.returncode != 0
    flat = " ".join(run.stdout.split())
    assert "On failure: revert the hosts already on demo-2 to demo-1" in plan_of(run.stdout)
    assert "Deploying demo-2 to fleet-app-2 failed" in flat
    assert "Reverted to demo-1: fleet-app-1. The version store is unchanged." in flat
    # The webhook heard: the start, fleet-app-2's backend rolling back by itself, the
    # fleet revert, the failure.
    assert notified.events() == ["start", "rollback", "revert", "failure"]
    assert notified.received[1]["cnt"]["host"] == "fleet-app-2"
    assert notified.received[2]["cnt"]["reverted"] == ["fleet-app-1"]
    assert notified.received[2]["text"].endswith("failed: reverted fleet-app-1 to demo-1.")
    assert (recorded["Value"], recorded["Version"]) == ("demo-1", 1)
    # The canary had served demo-2; every host runs demo-1 again.
    assert "demo-2" in load.versions and load.versions[-1] == "demo-1"
    for name in APPS:
        assert {s: labels(name)[s]["cnt.version"] for s in ("cnt-backend", "cnt-voice-agent")} == {
            "cnt-backend": "demo-1",
            "cnt-voice-agent": "demo-1",
        }
    assert load.failures == [] and load.requests >= 200
    assert haproxy_errors() == errors_before
    assert "action=revert version=demo-1 result=deployed" in last_audit("fleet-app-1")
    assert "version=demo-2 result=failed" in last_audit("fleet-app-2")
    assert "MAINT" not in haproxy_status()
    # fleet-app-1 rolled (twice): it keeps its last two versions' images, the older ones
    # are gone; fleet-app-2 failed before that step and keeps everything.
    assert image_tags("fleet-app-1") >= {"cnt-backend:demo-1", "cnt-backend:demo-2", "cnt-voice-agent:demo-2"}
    assert image_tags("fleet-app-1").isdisjoint(OLD)
    assert image_tags("fleet-app-2") >= set(OLD)
    for name in APPS:
        app(name).run(f"docker rmi {OLD[0]} {OLD[1]}")


OLD = ("cnt-backend:demo-0", "cnt-voice-agent:demo-0")


def image_tags(name: str) -> set[str]:
    return set(app(name).check_output("docker images --format '{{.Repository}}:{{.Tag}}'").split())


# Drift: what a person or a crash changed on the hosts behind the deploy's back. Each
# drift must show in the plan of a dry run as a change, and a plain deploy.yml must put
# it back, restarting nothing else.
HAPROXY_COMMAND = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect("/run/haproxy/admin.sock")
s.sendall(sys.argv[1].encode() + b"\\n")
print(s.recv(65536).decode())
"""


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def haproxy(command: str) -> str:
    lb = testinfra.get_host("docker://fleet-lb")
    return lb.check_output("python3 -c " + shlex.quote(HAPROXY_COMMAND) + " " + shlex.quote(command))


def containers(name: str) -> dict[str, tuple[str, bool] | None]:
    """Each service container on the host: (ID, running), or None when there is none."""
    out = app(name).check_output("docker ps -a --no-trunc --format '{{.Names}} {{.ID}} {{.State}}'")
    found = {n: (i, state == "running") for n, i, state in (line.split() for line in out.splitlines())}
    return {s: found.get(s) for s in SERVICES}


def audit_of(name: str) -> list[str]:
    return app(name).file("/var/log/cnt-deploy.log").content_string.splitlines()


def last_audit(name: str) -> str:
    return app(name).file("/var/log/cnt-deploy.log").content_string.splitlines()[-1]


def assert_planned(planned: list[str], not_planned: list[str], extra_inventory: Path | None = None) -> None:
    """A dry run (deploy.yml --check) passes and its plan says each of `planned` and none
    of `not_planned`."""
    dry = deploy("--check", extra_inventory=extra_inventory)
    assert dry.returncode == 0, dry.stdout[-3000:]
    flat = plan_of(dry.stdout)
    assert [line for line in planned if line not in flat] == [], flat[-3000:]
    assert [line for line in not_planned if line in flat] == [], flat[-3000:]


def test_drift_maintenance_stopped_container_edited_livekit_yaml_planned_and_repaired():
    before = {n: containers(n) for n in APPS}
    livekit_yaml = app("fleet-app-2").file("/etc/cnt/livekit.yaml").sha256sum
    # fleet-app-1: left in maintenance in HAProxy (an earlier run drained it and died).
    haproxy("disable server cnt_backend/fleet-app-1")
    # fleet-app-2: the voice agent stopped by hand; livekit.yaml edited by hand.
    app("fleet-app-2").check_output("docker stop cnt-voice-agent && echo '# edited by hand' >> /etc/cnt/livekit.yaml")

    # status.yml names both, and fails (a cron check).
    run, report = status()
    assert run.returncode != 0
    maint = "out of the load balancer: fleet-lb: cnt_backend/fleet-app-1 is in MAINT"
    assert report["flagged"]["fleet-app-1"] == [maint]
    assert [flag.split(" (exit code")[0] for flag in report["flagged"]["fleet-app-2"]] == ["cnt-voice-agent: exited"]
    flat = " ".join(run.stdout.split())
    assert f"2 of 2 hosts flagged: fleet-app-1 ({maint});" in flat
    assert "fleet-app-2 (cnt-voice-agent: exited (exit code" in flat

    assert_planned(
        [
            "of demo-1 to local: 2 of 2 hosts change",
            "fleet-app-1 restarts nothing",
            "load balancer: fleet-lb: cnt_backend/fleet-app-1 is in MAINT (put back in service)",
            "fleet-app-2 would restart cnt-voice-agent, leaves the load balancer first",
            "cnt-voice-agent: it is not running",
            # LiveKit read the file when it started: the file is put back, LiveKit keeps running.
            "file changes: /etc/cnt/livekit.yaml",
        ],
        ["cnt-livekit-server:"],
    )
    assert "MAINT" in haproxy("show stat"), "the dry run must not put the host back"

    # The repair runs with a webhook nobody answers: the notifications warn, the deploy
    # goes on.
    unreachable = {"cnt_notify_webhook_url": f"http://127.0.0.1:{closed_port()}/hooks/T0001/B0001/{WEBHOOK_TOKEN}"}
    TEST_SECRETS.extend([unreachable["cnt_notify_webhook_url"], WEBHOOK_TOKEN])
    run = deploy("-e", json.dumps(unreachable))
    assert run.returncode == 0, run.stdout[-3000:]
    flat = " ".join(run.stdout.split())
    for event in ("start", "success"):
        assert f"WARNING: the {event} notification was not delivered to cnt_notify_webhook_url: no answer" in flat
    repaired, report = status()
    assert repaired.returncode == 0 and report["flagged"] == {}, repaired.stdout[-3000:]
    after = {n: containers(n) for n in APPS}
    # fleet-app-1: back in service, nothing restarted.
    assert after["fleet-app-1"] == before["fleet-app-1"]
    assert "MAINT" not in haproxy("show stat")
    assert last_audit("fleet-app-1").endswith("result=reconciled")
    # fleet-app-2: the agent started again (the same container), the rendered
    # livekit.yaml back, LiveKit and the backend untouched.
    assert after["fleet-app-2"]["cnt-voice-agent"] == (before["fleet-app-2"]["cnt-voice-agent"][0], True)
    assert after["fleet-app-2"]["cnt-livekit-server"] == before["fleet-app-2"]["cnt-livekit-server"]
    assert after["fleet-app-2"]["cnt-backend"] == before["fleet-app-2"]["cnt-backend"]
    assert app("fleet-app-2").file("/etc/cnt/livekit.yaml").sha256sum == livekit_yaml
    assert last_audit("fleet-app-2").endswith("result=deployed")
    report = json.loads(REPORT.read_text())
    assert report["load_balancer"] == {h: "in service" for h in APPS}


def test_drift_removed_image_daemon_json_removed_container_changed_backend_value_planned_and_repaired(tmp_path):
    before = {n: containers(n) for n in APPS}
    daemon_json = app("fleet-app-1").file("/etc/docker/daemon.json").sha256sum
    backend_env = app("fleet-app-2").file("/etc/cnt/backend.env").content_string
    # fleet-app-1: the backend's image removed (pulled again by digest); daemon.json changed by hand.
    backend_image = container_image("fleet-app-1", "cnt-backend")
    app("fleet-app-1").check_output(
        f"docker rmi -f {backend_image} && sed -i 's/^{{/{{\"debug\": true,/' /etc/docker/daemon.json"
    )
    # fleet-app-2: the voice agent's container removed by hand; one backend value changed
    # in the inventory (a host variable).
    app("fleet-app-2").check_output("docker rm -f cnt-voice-agent")
    changed = tmp_path / "changed.yml"
    changed.write_text("all:\n  hosts:\n    fleet-app-2:\n      cnt_backend_env: {APP_ENV: local, DRIFT: 'on'}\n")

    assert_planned(
        [
            "of demo-1 to local: 2 of 2 hosts change",
            "docker engine: /etc/docker/daemon.json changes: the engine restarts",
            f"cnt-backend: its image {backend_image} is not on the host",
            "cnt-voice-agent: created (it does not exist yet)",
            "cnt-backend: its configuration changes (/etc/cnt/backend.env)",
            "file changes: /etc/cnt/backend.env",
        ],
        ["cnt-livekit-server:"],
        extra_inventory=changed,
    )

    run = deploy(extra_inventory=changed)
    assert run.returncode == 0, run.stdout[-3000:]
    after = {n: containers(n) for n in APPS}
    # fleet-app-1: the image is back, daemon.json as rendered, and no container recreated
    # (the engine restarted with live-restore on).
    assert app("fleet-app-1").run(f"docker image inspect {backend_image}").rc == 0
    assert app("fleet-app-1").file("/etc/docker/daemon.json").sha256sum == daemon_json
    assert {s: c[0] for s, c in after["fleet-app-1"].items()} == {s: c[0] for s, c in before["fleet-app-1"].items()}
    assert all(running for _, running in after["fleet-app-1"].values())
    # fleet-app-2: a new voice agent, the backend recreated with the new value, LiveKit
    # untouched.
    assert after["fleet-app-2"]["cnt-voice-agent"][1] is True
    assert after["fleet-app-2"]["cnt-backend"][0] != before["fleet-app-2"]["cnt-backend"][0]
    assert after["fleet-app-2"]["cnt-livekit-server"] == before["fleet-app-2"]["cnt-livekit-server"]
    env = app("fleet-app-2").file("/etc/cnt/backend.env").content_string
    assert "DRIFT='on'" in env and "DRIFT" not in backend_env
    assert app("fleet-app-2").check_output("docker exec cnt-backend printenv DRIFT") == "on"
    report = json.loads(REPORT.read_text())
    assert report["socketio"] == {"expected": 2, "delivered": 2}

    # Repaired: the next deploy has nothing to do.
    again = deploy(extra_inventory=changed)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "of demo-1 to local: 0 of 2 hosts change" in " ".join(again.stdout.split())
    assert {n: containers(n) for n in APPS} == after


def test_two_concurrent_deploys_the_second_is_refused_naming_the_holder_and_changes_nothing(tmp_path):
    """Two operators deploy at once: the first holds the fleet's lock (in Redis) and
    rolls; the second is refused at its first host, naming the first, and changes nothing."""
    log = tmp_path / "first.log"
    with log.open("w") as out:
        # Its canary bakes long enough for the second run to plan, however loaded the machine.
        first = subprocess.Popen(
            playbook_command("deploy.yml", ("-e", "cnt_app_version=demo-2", "-e", "cnt_deploy_bake_seconds=90")),
            cwd=PROJECT,
            env=playbook_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 600
            # The first run holds the lock from its canary on; it bakes the canary now.
            while "TASK [Bake (let the canary serve" not in log.read_text() and first.poll() is None:
                assert time.monotonic() < deadline, "the first deploy never reached its first host"
                time.sleep(1)
            second = deploy("-e", "cnt_app_version=demo-2")
        finally:
            first.wait(timeout=1200)
    first_out = log.read_text()
    assert secret_scan.leaks(first_out, SECRETS) == []
    assert first.returncode == 0, first_out[-3000:]
    assert second.returncode != 0
    flat = " ".join(second.stdout.split())
    holder = re.search(
        r"Another deploy of local holds the lock cnt:deploy-lock:local: (\S+) actor=\S+ version=demo-2", flat
    )
    assert holder, flat[-3000:]
    second_id = re.search(r"cnt_deploy_run_id: (\S+)", second.stdout).group(1)
    assert second_id != holder.group(1)
    for name in APPS:
        audit = app(name).file("/var/log/cnt-deploy.log").content_string
        # The holder named is the first run, which deployed every host; the second run
        # left no trace on any host.
        assert f"run={holder.group(1)} " in audit.splitlines()[-1] and "result=deployed" in audit.splitlines()[-1]
        assert f"run={second_id} " not in audit
        assert labels(name)["cnt-backend"]["cnt.version"] == "demo-2"
    assert "MAINT" not in haproxy_status()
