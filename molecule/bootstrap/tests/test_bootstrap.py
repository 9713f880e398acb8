"""Auto Scaling bootstrap: bare hosts ran the launch template's user data (converge).
What an operator would check on a new instance, and what Auto Scaling was told.
Tests run in file order; the last ones re-run ansible-pull on the healthy instance."""

from __future__ import annotations

import datetime
import importlib.util
import json
import os
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import boto3
import redis
import requests
import testinfra
import yaml

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
PROJECT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
DOUBLES = "http://172.30.59.1:5301"
MOTO = "http://172.30.59.1:5302"
TESTING_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
SERVICES = ["cnt-backend", "cnt-livekit-server", "cnt-voice-agent"]
# What prepare stored in the emulated SSM / Secrets Manager (molecule/bootstrap/vars/bootstrap.yml,
# the demo vault) and the vault of the pulled inventory.
SECRETS = [
    "ci-git-token-0123456789abcdef",
    "demo-redis-auth-token-0123456789",
    "ci-livekit-secret-from-ssm-0123456789abcdef",
    "ci-backend-secret-key-from-vault",
    "ci-bootstrap-vault-password",
    "ci-webhook-token-0123456789",
    # The registry's: the demo user's password, and the token moto's ECR hands out.
    "demo-registry-password-0123456789",
    "123456789012-auth-token",
]

_spec = importlib.util.spec_from_file_location("secret_scan", PROJECT / "tests/secret_scan.py")
secret_scan = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(secret_scan)

app = testinfra.get_host("docker://bootstrap-app")
broken = testinfra.get_host("docker://bootstrap-broken")


def outcome(host: str) -> dict:
    return json.loads((EPHEMERAL / f"bootstrap-{host}.json").read_text())


def instance_id(address: str) -> str:
    return json.loads((EPHEMERAL / "aws-instances.json").read_text())[address]["instance-id"]


def container(host, name: str) -> dict:
    return json.loads(host.check_output(f"docker inspect {name}"))[0]


def lifecycle() -> list[dict]:
    return requests.get(f"{DOUBLES}/_doubles/lifecycle", timeout=5).json()


def test_bare_host_to_healthy_time_is_reported() -> None:
    result = outcome("bootstrap-app")
    assert result["rc"] == 0, "\n".join(result["output"])
    report = {"bootstrap_s": result["seconds"], "host": "bootstrap-app", "what": "bare host to healthy (user data)"}
    (PROJECT / "reports").mkdir(exist_ok=True)
    (PROJECT / "reports" / "bootstrap.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nbare host to healthy through the user data and ansible-pull: {result['seconds']} s")


def test_instance_runs_the_version_the_last_deploy_recorded() -> None:
    # The pulled inventory says cnt_app_version: not-the-recorded-version; SSM says demo-1.
    for name in SERVICES:
        info = container(app, name)
        assert info["State"]["Running"], name
    for name in ["cnt-backend", "cnt-voice-agent"]:
        labels = container(app, name)["Config"]["Labels"]
        assert labels["cnt.version"] == "demo-1", (name, labels)


REGISTRY = "172.30.59.10:5000"
# The user and password moto's ECR hands out (the test registry accepts them).
REGISTRY_AUTH = ("AWS", "123456789012-auth-token")
REGISTRY_CA = str(EPHEMERAL / "demo/tls/ca.pem")
MANIFESTS = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def retag_in_registry(name: str, source: str, target: str) -> None:
    """Push another tag of an image, as a build of a new version with the same bytes does."""
    got = requests.get(
        f"https://{REGISTRY}/v2/{name}/manifests/{source}",
        auth=REGISTRY_AUTH, verify=REGISTRY_CA, timeout=10, headers={"Accept": MANIFESTS},
    )  # fmt: skip
    got.raise_for_status()
    put = requests.put(
        f"https://{REGISTRY}/v2/{name}/manifests/{target}",
        data=got.content, auth=REGISTRY_AUTH, verify=REGISTRY_CA, timeout=10,
        headers={"Content-Type": got.headers["Content-Type"]},
    )  # fmt: skip
    assert put.status_code == 201, put.text


def test_instance_pulled_the_digests_the_version_store_records_from_the_registry_logged_in_as_ecr() -> None:
    ssm = boto3.client("ssm", endpoint_url=MOTO, region_name="us-east-1", **TESTING_KEYS)
    recorded = json.loads(ssm.get_parameter(Name="/cnt/ci-bootstrap/images/demo-1")["Parameter"]["Value"])
    assert set(recorded) == {"cnt-backend", "cnt-voice-agent"}, recorded
    auth, ca, accept = REGISTRY_AUTH, REGISTRY_CA, MANIFESTS
    for name, digest in recorded.items():
        info = container(app, name)
        # Run by digest, and that digest is the image the container runs.
        assert info["Config"]["Image"] == f"{REGISTRY}/{name}@{digest}", info["Config"]["Image"]
        image = json.loads(app.check_output(f"docker image inspect {info['Image']}"))[0]
        assert f"{REGISTRY}/{name}@{digest}" in image["RepoDigests"], image["RepoDigests"]
        # The registry (TLS, basic auth) has that digest under the version's tag.
        answer = requests.head(
            f"https://{REGISTRY}/v2/{name}/manifests/demo-1",
            auth=auth,
            verify=ca,
            timeout=10,
            headers={"Accept": accept},
        )
        assert answer.headers["Docker-Content-Digest"] == digest
    # Nothing was handed over: no image archive on the instance, and the engine logged in
    # with the token ECR (moto) gave the instance role; the registry refuses anonymous pulls.
    assert not app.file("/srv/cnt-images").exists
    config = json.loads(app.file("/root/.docker/config.json").content_string)
    assert REGISTRY in config["auths"], config
    anonymous = requests.head(f"https://{REGISTRY}/v2/cnt-backend/manifests/demo-1", verify=ca, timeout=10)
    assert anonymous.status_code == 401


def test_backend_is_healthy_on_redis_with_tls_and_auth() -> None:
    body = app.check_output(
        "python3 -c \"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/health').read().decode())\""
    )
    health = json.loads(body)
    assert health["redis"] == "ok", health


def test_instance_knows_itself_from_instance_metadata() -> None:
    env = dict(item.split("=", 1) for item in container(app, "cnt-backend")["Config"]["Env"])
    # Not "localhost" (its name in the pull inventory): the instance ID, as pushes name it.
    assert env["INSTANCE_NAME"] == instance_id("172.30.59.11")
    livekit = app.file("/etc/cnt/livekit.yaml").content_string
    assert 'node_ip: "172.30.59.11"' in livekit
    asked = requests.get(f"{DOUBLES}/_doubles/imds", timeout=5).json()["172.30.59.11"]
    for path in ["/latest/meta-data/instance-id", "/latest/meta-data/local-ipv4"]:
        assert path in asked, asked
    # boto3 took the instance role's credentials from the (test) metadata endpoint.
    assert any(p.startswith("/latest/meta-data/iam/security-credentials/") for p in asked), asked


def test_secrets_come_from_ssm_and_the_vault_and_are_not_printed() -> None:
    env_file = app.file("/etc/cnt/backend.env")
    assert env_file.mode == 0o600
    content = env_file.content_string
    assert "demo-redis-auth-token-0123456789" in content  # SSM SecureString
    assert "ci-backend-secret-key-from-vault" in content  # vault, password from Secrets Manager
    assert app.file("/etc/cnt-deploy/pull.env").mode == 0o600
    assert app.file("/var/log/cnt-bootstrap.log").mode == 0o600
    log = app.file("/var/log/cnt-bootstrap.log").content_string
    assert "PLAY RECAP" in log
    assert secret_scan.leaks(log, SECRETS) == [], "a secret reached the bootstrap log"


def test_the_private_repository_was_cloned_with_a_token_from_secrets_manager_stored_nowhere() -> None:
    """The repository answers only to its token; the instances cloned it (git's credential
    helper read the token from Secrets Manager with the instance role), and the token is in
    no file and no log on the instance."""
    assert requests.get(f"{DOUBLES}/static/cnt-deploy.git/info/refs", timeout=5).status_code == 401
    attempts = requests.get(f"{DOUBLES}/_doubles/git-auth", timeout=5).json()
    assert attempts["accepted"] > 0 and attempts["refused"] > 0, attempts
    assert "cnt-git-credential cnt/ci/git-token" in app.file("/etc/gitconfig").content_string
    token = "ci-git-token-0123456789abcdef"
    for path in ("/etc/gitconfig", "/opt/cnt-deploy/repo/.git/config", "/etc/cnt-deploy/pull.env"):
        assert token not in app.file(path).content_string, path
    found = app.run(f"grep -rlF {token} /etc /opt/cnt-deploy/repo/.git /var/log /root /run/log 2>/dev/null")
    assert found.stdout.strip() == "", found.stdout


def test_auto_scaling_was_told_continue_for_the_healthy_instance_and_abandon_for_the_broken() -> None:
    records = lifecycle()
    assert [r for r in records if not r["accepted"]] == [], records
    by_instance = {r["instance"]: r for r in records}
    assert len(by_instance) == len(records) == 2, records
    healthy = by_instance[instance_id("172.30.59.11")]
    assert (healthy["group"], healthy["hook"], healthy["result"], healthy["caller"]) == (
        "cnt-ci-bootstrap-app",
        "cnt-launch",
        "CONTINUE",
        "172.30.59.11",
    )
    failed = by_instance[instance_id("172.30.59.12")]
    assert (failed["group"], failed["hook"], failed["result"], failed["caller"]) == (
        "cnt-ci-broken-app",
        "cnt-launch",
        "ABANDON",
        "172.30.59.12",
    )


def test_broken_instance_failed_on_its_health_gate_and_stays_out() -> None:
    result = outcome("bootstrap-broken")
    assert result["rc"] != 0
    output = "\n".join(result["output"])
    assert "lifecycle action ABANDON" in output
    assert "health" in output.lower()
    assert not broken.file("/etc/systemd/system/cnt-pull.timer").exists
    # Nothing printed the secrets, the webhook's URL among them.
    log = broken.file("/var/log/cnt-bootstrap.log").content_string
    assert secret_scan.leaks(output + log, SECRETS) == []
    # The instance told the team itself (the webhook's URL from Parameter Store).
    webhooks = requests.get(f"{DOUBLES}/_doubles/webhooks", timeout=5).json()
    told = [w for w in webhooks if w["caller"] == "172.30.59.12"]
    assert [w["body"]["cnt"]["event"] for w in told] == ["abandon"], told
    message = told[0]["body"]
    assert message["cnt"]["instance"] == instance_id("172.30.59.12") and message["cnt"]["version"] == "broken"
    assert message["text"].startswith(f"Instance {instance_id('172.30.59.12')} failed its first configuration")
    assert "ABANDON, Auto Scaling replaces it. cnt-backend broken failed: no healthy answer" in message["text"]
    assert "Last " not in message["text"], "the failing container's log lines are not sent"


def test_timer_is_installed_and_runs() -> None:
    timer = app.service("cnt-pull.timer")
    assert timer.is_enabled
    assert timer.is_running
    env = app.file("/etc/cnt-deploy/pull.env").content_string
    assert "CNT_ENVIRONMENT=ci-bootstrap" in env


def test_a_run_while_another_holds_the_lock_does_nothing() -> None:
    out = app.run(
        "flock /run/lock/cnt-pull.lock sh -c "
        "'systemctl start cnt-pull.service; journalctl -u cnt-pull.service --no-pager -n 20 -o cat'"
    )
    assert out.rc == 0, out.stderr
    assert "another run holds /run/lock/cnt-pull.lock" in out.stdout
    assert "ansible-pull of" not in out.stdout.split("another run holds")[-1]


def test_timer_run_stops_when_the_repository_did_not_move() -> None:
    app.run("journalctl --rotate; journalctl --vacuum-time=1s")
    before = container(app, "cnt-backend")["Id"]
    out = app.run("systemctl start cnt-pull.service && journalctl -u cnt-pull.service --no-pager -n 40 -o cat")
    assert out.rc == 0, out.stderr
    assert "Repository has not changed, quitting" in out.stdout
    assert container(app, "cnt-backend")["Id"] == before


def test_full_rerun_of_ansible_pull_changes_nothing() -> None:
    before = {name: container(app, name)["Id"] for name in SERVICES}
    count = len(lifecycle())
    # At -vvv (local.yml, as ansible-pull runs it): no secret in any form.
    out = app.run("CNT_PULL_VERBOSITY=3 /usr/local/sbin/cnt-pull")
    assert out.rc == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "ESTABLISH LOCAL CONNECTION" in out.stdout, "not run at -vvv"
    assert secret_scan.leaks(out.stdout + out.stderr, SECRETS) == []
    recap = out.stdout.split("PLAY RECAP")[-1]
    assert "changed=0" in recap and "failed=0" in recap, recap
    assert {name: container(app, name)["Id"] for name in SERVICES} == before
    # Only the first boot completes the lifecycle action.
    assert len(lifecycle()) == count


SERVED = EPHEMERAL / "static" / "cnt-deploy.git"


def push_change(greeting: str, signer: str | None) -> str:
    """Commit a configuration change to the served repository (signed by `signer`'s key:
    "team", "rogue", or None for unsigned), push it, return the commit."""
    with tempfile.TemporaryDirectory() as work:
        env = dict(os.environ, GNUPGHOME=str(EPHEMERAL / f"gnupg-{signer or 'team'}"))
        git = ["git", "-C", work, "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
        subprocess.run(["git", "clone", "-q", str(SERVED), work], check=True)
        group_vars = Path(work) / "molecule/bootstrap/pull/ci-bootstrap/group_vars/all/cnt.yml"
        text = group_vars.read_text()
        assert "  APP_ENV: ci\n" in text
        text = re.sub(r"  FEATURE_GREETING: .*\n", "", text)
        group_vars.write_text(text.replace("  APP_ENV: ci\n", f"  APP_ENV: ci\n  FEATURE_GREETING: {greeting}\n"))
        sign = ["-c", f"user.signingkey={signer}@example.invalid", "commit", "-S"] if signer else ["commit"]
        subprocess.run([*git, *sign, "-q", "-am", f"greeting {greeting}"], check=True, env=env)
        subprocess.run([*git, "push", "-q", "--force", "origin", "main"], check=True)
        commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run(["git", "-C", str(SERVED), "update-server-info"], check=True)
    return commit


def test_a_commit_not_signed_by_the_team_is_refused_and_the_instance_keeps_its_version() -> None:
    """A commit signed by another key, then an unsigned one, reach the branch: the timer
    run refuses each before anything of it is checked out, and says why; the instance
    keeps running what it ran."""
    served = subprocess.run(["git", "-C", str(SERVED), "rev-parse", "main"], check=True, capture_output=True, text=True)
    original = served.stdout.strip()
    head = app.check_output("git -C /opt/cnt-deploy/repo rev-parse HEAD")
    before = {name: container(app, name)["Id"] for name in SERVICES}
    try:
        for signer in ("rogue", None):
            commit = push_change(f"from-{signer or 'nobody'}", signer)
            app.run("journalctl --rotate; journalctl --vacuum-time=1s")
            out = app.run("systemctl start cnt-pull.service; journalctl -u cnt-pull.service --no-pager -n 60 -o cat")
            assert f"cnt-pull: REFUSED main at {commit}: not signed by a trusted key" in out.stdout, out.stdout
            assert f"this instance keeps running {head}" in out.stdout
            assert "ansible-pull of" not in out.stdout
            assert app.check_output("git -C /opt/cnt-deploy/repo rev-parse HEAD") == head
            assert {name: container(app, name)["Id"] for name in SERVICES} == before
            assert not app.run("systemctl is-failed --quiet cnt-pull.service").rc, "the refused run must show as failed"
    finally:
        subprocess.run(["git", "-C", str(SERVED), "update-ref", "refs/heads/main", original], check=True)
        subprocess.run(["git", "-C", str(SERVED), "update-server-info"], check=True)
        app.run("systemctl reset-failed cnt-pull.service")


def registered(target_group_arn: str) -> list[str]:
    """The instances a target group (in moto) sends traffic to."""
    elbv2 = boto3.client("elbv2", endpoint_url=MOTO, region_name="us-east-1", **TESTING_KEYS)
    health = elbv2.describe_target_health(TargetGroupArn=target_group_arn)["TargetHealthDescriptions"]
    return [t["Target"]["Id"] for t in health if t["TargetHealth"]["State"] not in ("unused", "draining")]


def target_group(name: str) -> str:
    elbv2 = boto3.client("elbv2", endpoint_url=MOTO, region_name="us-east-1", **TESTING_KEYS)
    return elbv2.describe_target_groups(Names=[name])["TargetGroups"][0]["TargetGroupArn"]


def test_a_repository_change_reaches_the_instance_through_the_timer() -> None:
    """An operator changes the deployment's configuration in git: the next timer run
    applies it (and restarts only what it concerns), without a push, out of the target
    group while it restarts the backend (as deploy.yml rolls a host), back in after."""
    before = container(app, "cnt-backend")["Id"]
    agent = container(app, "cnt-voice-agent")["Id"]
    count = len(lifecycle())
    # Signed by the team's key, as every commit instances run.
    push_change("hello-from-git", "team")

    out = app.run("systemctl start cnt-pull.service && journalctl -u cnt-pull.service --no-pager -n 3000 -o cat")
    assert out.rc == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "PLAY RECAP" in out.stdout, out.stdout[-3000:]
    recap = out.stdout.split("PLAY RECAP")[-1]
    assert "failed=0" in recap, recap
    env = dict(item.split("=", 1) for item in container(app, "cnt-backend")["Config"]["Env"])
    assert env["FEATURE_GREETING"] == "hello-from-git"
    assert container(app, "cnt-backend")["Id"] != before
    assert container(app, "cnt-voice-agent")["Id"] == agent
    assert len(lifecycle()) == count
    run = out.stdout.split("cnt-pull: ansible-pull of")[-1]
    drained = run.find("drain | Deregister the instance from the ALB target groups")
    # The apply's container steps (the plan before it runs them in check mode).
    restarted = run.rfind("container | Create or update the container")
    enabled = run.find("enable | Register the instance with the ALB target groups")
    assert -1 < drained < restarted < enabled, run[-3000:]
    assert run[drained:].split("TASK [", 1)[0].count("changed:") == 1, run[drained:][:2000]
    assert instance_id("172.30.59.11") in registered(target_group("cnt-ci-bootstrap-backend"))


def test_the_instance_runs_the_commit_the_last_deploy_pinned_not_the_branch_head() -> None:
    """deploy.yml pins the commit it rolled out beside the version (/cnt/<env>/app_commit):
    a commit pushed to the branch after it does not reach the instance; once a deploy
    pins it, the next run takes it."""
    ssm = boto3.client("ssm", endpoint_url=MOTO, region_name="us-east-1", **TESTING_KEYS)
    pin = "/cnt/ci-bootstrap/app_commit"
    served = subprocess.run(["git", "-C", str(SERVED), "rev-parse", "main"], check=True, capture_output=True, text=True)
    original = served.stdout.strip()
    pinned = app.check_output("git -C /opt/cnt-deploy/repo rev-parse HEAD")
    greeting = "hello-from-git"

    def run_timer() -> str:
        app.run("journalctl --rotate; journalctl --vacuum-time=1s")
        out = app.run("systemctl start cnt-pull.service; journalctl -u cnt-pull.service --no-pager -n 3000 -o cat")
        assert out.rc == 0, out.stdout[-3000:] + out.stderr[-2000:]
        return out.stdout

    def backend_greeting() -> str:
        env = dict(item.split("=", 1) for item in container(app, "cnt-backend")["Config"]["Env"])
        return env.get("FEATURE_GREETING", "")

    assert backend_greeting() == greeting
    ssm.put_parameter(Name=pin, Value=pinned, Type="String", Overwrite=True)
    try:
        head = push_change("hello-unpinned", "team")
        out = run_timer()
        assert f"main is at {head}; running {pinned}, the commit the last deploy verified ({pin})" in out, out[-3000:]
        assert app.check_output("git -C /opt/cnt-deploy/repo rev-parse HEAD") == pinned
        assert backend_greeting() == greeting

        # A deploy pins the branch's head: the next run takes it.
        ssm.put_parameter(Name=pin, Value=head, Type="String", Overwrite=True)
        out = run_timer()
        assert "the commit the last deploy verified" not in out
        assert app.check_output("git -C /opt/cnt-deploy/repo rev-parse HEAD") == head
        assert backend_greeting() == "hello-unpinned"
    finally:
        ssm.delete_parameter(Name=pin)
        subprocess.run(["git", "-C", str(SERVED), "update-ref", "refs/heads/main", original], check=True)
        subprocess.run(["git", "-C", str(SERVED), "update-server-info"], check=True)


def test_the_instance_published_its_ssh_host_keys_and_a_controller_trusts_only_those(tmp_path) -> None:
    """The instance published its SSH host keys (instance role, Parameter Store). A
    controller (host_key_checking on, playbooks/known-hosts.yml) connects to it trusting
    those keys only: a host whose key is not the published one is refused, and so is a
    host that published none, before any connection."""
    address = "172.30.59.11"
    instance = instance_id(address)
    ssm = boto3.client(
        "ssm",
        endpoint_url="http://172.30.59.1:5302",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    # Its inventory's cnt_environment is staging.
    published = ssm.get_parameter(Name=f"/cnt/staging/ssh-host-keys/{instance}")["Parameter"]["Value"]
    on_host = app.check_output("cat /etc/ssh/ssh_host_*_key.pub")
    assert sorted(published.splitlines()) == sorted(" ".join(line.split()[:2]) for line in on_host.splitlines())

    known_hosts = tmp_path / "known_hosts"
    host = {
        "ansible_host": address,
        "instance_id": instance,
        "ansible_user": "root",
        "ansible_connection": "ssh",
        "ansible_ssh_private_key_file": str(EPHEMERAL / "ssh" / "id_ed25519"),
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes",
    }
    group = {
        "cnt_environment": "staging",
        "cnt_aws_region": "us-east-1",
        "cnt_ssh_host_keys": "ssm",
        "cnt_ssh_known_hosts_file": str(known_hosts),
    }
    playbook = tmp_path / "connect.yml"
    playbook.write_text(
        f"- import_playbook: {PROJECT / 'playbooks' / 'known-hosts.yml'}\n"
        "- hosts: app_servers\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n"
    )
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"),
        AWS_ENDPOINT_URL="http://172.30.59.1:5302",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_EC2_METADATA_DISABLED="true",
        # A fresh connection each run: a persisting master connection (ControlPersist)
        # would carry the next run past the key exchange, where the host key is checked.
        ANSIBLE_SSH_ARGS="-o ControlMaster=no",
    )

    def connect(hosts: dict) -> subprocess.CompletedProcess:
        inventory = tmp_path / "hosts.yml"
        inventory.write_text(yaml.safe_dump({"app_servers": {"hosts": hosts, "vars": group}}))
        return subprocess.run(
            ["ansible-playbook", "-i", str(inventory), str(playbook)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    trusted = connect({"bootstrap-app-ssh": host})
    assert trusted.returncode == 0, trusted.stdout[-3000:] + trusted.stderr[-2000:]
    assert "ok: [bootstrap-app-ssh]" in trusted.stdout.split("TASK [ansible.builtin.ping]")[1]
    assert f"{address} ssh-ed25519 " in known_hosts.read_text()

    # A host presenting another key at that address: refused.
    app.check_output("cp -a /etc/ssh /root/ssh-saved")
    try:
        app.check_output("rm /etc/ssh/ssh_host_* && ssh-keygen -A && systemctl restart ssh")
        impostor = connect({"bootstrap-app-ssh": host})
        assert impostor.returncode != 0
        assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in impostor.stdout + impostor.stderr
    finally:
        app.check_output("rm -rf /etc/ssh && mv /root/ssh-saved /etc/ssh && systemctl restart ssh")

    # A host that published no key: refused by name, before any connection.
    unknown = connect({"bootstrap-app-ssh": host, "stranger": {**host, "instance_id": "i-0123456789abcdef0"}})
    assert unknown.returncode != 0
    assert "No SSH host key published for stranger under /cnt/staging/ssh-host-keys" in " ".join(unknown.stdout.split())
    # Nothing connected: the run stopped before the play that pings.
    assert "TASK [ansible.builtin.ping]" not in unknown.stdout


def scale_out(group: str, address: str) -> tuple[str, str]:
    """A new instance in the group (moto launches it), answered for by the metadata double
    at a test host's address. Returns its ID and the double's previous mapping."""
    autoscaling = boto3.client("autoscaling", endpoint_url=MOTO, region_name="us-east-1", **TESTING_KEYS)
    members = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]
    before = {i["InstanceId"] for i in members["Instances"]}
    autoscaling.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=len(before) + 1)
    members = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]
    (new,) = {i["InstanceId"] for i in members["Instances"]} - before
    instances = EPHEMERAL / "aws-instances.json"
    saved = instances.read_text()
    mapping = json.loads(saved)
    mapping[address]["instance-id"] = new
    instances.write_text(json.dumps(mapping))
    return new, saved


def test_an_instance_launched_while_a_deploy_holds_the_lock_waits_then_runs_the_version_it_recorded(tmp_path) -> None:
    """A deploy of demo-1b holds the fleet's lock (in the fleet's Redis, TLS + AUTH) when
    Auto Scaling launches an instance: its first ansible-pull waits, holding nothing;
    the deploy records demo-1b and releases the lock; the instance then takes its share
    of the lock, reads demo-1b, runs it, completes its launch action with CONTINUE and
    releases its share."""
    ssm = boto3.client("ssm", endpoint_url=MOTO, region_name="us-east-1", **TESTING_KEYS)

    def parameter(name: str) -> str:
        return ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]

    ca = tmp_path / "ca.pem"
    ca.write_text(parameter("/cnt/staging/redis_ca_cert"))
    fleet = redis.Redis(
        host="172.30.59.10",
        port=6379,
        password=parameter("/cnt/staging/redis_auth_token"),
        ssl=True,
        ssl_ca_certs=str(ca),
    )
    lock = "cnt:deploy-lock:staging"
    # What the deploy rolls out: a new tag of the same images, pushed to the registry.
    for name in ("cnt-backend", "cnt-voice-agent"):
        retag_in_registry(name, "demo-1", "demo-1b")
    fleet.set(lock, "run-deploy-1b actor=operator version=demo-1b since=now", ex=600)
    new, saved = scale_out("cnt-ci-bootstrap-app", "172.30.59.11")
    try:
        pull = subprocess.Popen(
            # Unbuffered: ansible-pull passes the playbook's output on as it comes.
            ["docker", "exec", "-e", "PYTHONUNBUFFERED=1", "bootstrap-app", "/usr/local/sbin/cnt-pull", "--first-boot"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(pull.stdout), daemon=True)
        reader.start()
        deadline = time.monotonic() + 600
        while not any("RETRYING: [localhost]: lock | Take the deploy lock" in line for line in lines):
            assert pull.poll() is None, "".join(lines)[-3000:]
            assert time.monotonic() < deadline, "the pull never reached the lock"
            time.sleep(1)
        # It waits, holding nothing.
        time.sleep(12)
        assert pull.poll() is None and fleet.zcard(lock + ":shared") == 0
        # The deploy verified the fleet, records its version, releases the lock.
        ssm.put_parameter(Name="/cnt/ci-bootstrap/app_version", Value="demo-1b", Type="String", Overwrite=True)
        fleet.delete(lock)
        pull.wait(timeout=900)
        reader.join(timeout=30)
        output = "".join(lines)
    finally:
        (EPHEMERAL / "aws-instances.json").write_text(saved)
        ssm.put_parameter(Name="/cnt/ci-bootstrap/app_version", Value="demo-1", Type="String", Overwrite=True)
    assert pull.returncode == 0, output[-3000:]
    assert "Wait while a deploy rolls the fleet" in output
    assert "staging runs demo-1b (recorded in SSM /cnt/ci-bootstrap/app_version)" in " ".join(output.split())
    for name in ("cnt-backend", "cnt-voice-agent"):
        assert container(app, name)["Config"]["Labels"]["cnt.version"] == "demo-1b"
    completed = [(r["hook"], r["result"], r["accepted"]) for r in lifecycle() if r["instance"] == new]
    assert completed == [("cnt-launch", "CONTINUE", True)]
    assert fleet.zcard(lock + ":shared") == 0 and fleet.get(lock) is None
    assert secret_scan.leaks(output, SECRETS) == []


def test_a_user_data_step_failing_before_ansible_abandons_the_launch() -> None:
    """A new instance whose package step fails (pip finds none of the pinned wheels): the
    user data's trap completes the launch action with ABANDON at once (its own
    cnt-lifecycle: standard library only), instead of waiting for the hook's timeout.
    Auto Scaling launches it into the broken environment's group; the metadata double
    answers for it at bootstrap-broken's address."""
    group = "cnt-ci-broken-app"
    new, saved = scale_out(group, "172.30.59.12")
    env = {
        "CNT_REPO_URL": f"{DOUBLES}/static/cnt-deploy.git",
        "CNT_REPO_TOKEN_SECRET": "cnt/ci/git-token",
        "CNT_PULL_INVENTORY": "molecule/bootstrap/pull/%s/hosts.yml",
        "CNT_LIFECYCLE_HOOK": "cnt-launch",
        # The broken package step: no wheel to install from.
        "CNT_PIP_OPTIONS": "--no-index --find-links /nonexistent",
        "CNT_PULL_HOME": "/opt/cnt-deploy-second",
        "CNT_IMDS_URL": DOUBLES,
        "CNT_TRUSTED_KEYS": (EPHEMERAL / "trusted-keys.asc").read_text(),
        "AWS_ENDPOINT_URL": "http://172.30.59.1:5302",
        "AWS_ENDPOINT_URL_AUTO_SCALING": DOUBLES,
    }
    try:
        script = str(PROJECT / "bootstrap/user-data.sh")
        subprocess.run(["docker", "cp", script, "bootstrap-broken:/root/user-data.sh"], check=True)
        exec_env = [f"--env={k}={v}" for k, v in env.items()]
        command = ["docker", "exec", *exec_env, "bootstrap-broken", "bash", "/root/user-data.sh"]
        run = subprocess.run(command, capture_output=True, text=True, timeout=600)
    finally:
        (EPHEMERAL / "aws-instances.json").write_text(saved)
    assert run.returncode != 0
    # The log the user data keeps (its tee may finish after the script exits).
    time.sleep(2)
    log = broken.file("/var/log/cnt-bootstrap.log").content_string.split("cnt-bootstrap: start")[-1]
    assert "cnt-bootstrap: FAILED (exit 1) before ansible-pull: lifecycle action ABANDON" in log, log[-3000:]
    assert f"cnt-lifecycle: {new} in {group}: cnt-launch completed with ABANDON" in log, log[-3000:]
    # Nothing after the failing step ran: no first ansible-pull run.
    assert "first ansible-pull run" not in log and "cnt-pull: ansible-pull of" not in log
    completed = [(r["group"], r["hook"], r["result"], r["accepted"]) for r in lifecycle() if r["instance"] == new]
    assert completed == [(group, "cnt-launch", "ABANDON", True)]


def test_a_terminating_instance_drains_its_rooms_then_completes_the_hook_with_continue() -> None:
    """Last (it stops the instance's stack). Auto Scaling terminates the healthy instance
    (a scale-in) while a call is on: a room open on its LiveKit (the test double models
    LiveKit's drain: no new room once signalled, exits when its last room closes).
    cnt-scale-in reads the target lifecycle state from the metadata, takes the instance
    out of its target group, records heartbeats, and stops no container while the room
    is open (the voice agent drains beside it: with no job, it exits at once, exit 0);
    once the room closes, LiveKit exits by itself (not killed), then the backend stops,
    and the hook completes with CONTINUE, once."""
    address = "172.30.59.11"
    instance = instance_id(address)
    group = "cnt-ci-bootstrap-app"
    assert app.service("cnt-scale-in").is_enabled and app.service("cnt-scale-in").is_running
    autoscaling = boto3.client("autoscaling", endpoint_url=MOTO, region_name="us-east-1", **TESTING_KEYS)
    # The group's target group (prepare): Auto Scaling registered the instance in it.
    (arn,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0][
        "TargetGroupARNs"
    ]

    def ours(records: list[dict]) -> list[dict]:
        return [r for r in records if r["instance"] == instance and r["hook"] == "cnt-terminate"]

    def heartbeats() -> list[dict]:
        return ours(requests.get(f"{DOUBLES}/_doubles/heartbeats", timeout=5).json())

    assert instance in registered(arn)
    rooms = f"http://{address}:7880/twirp/livekit.RoomService"
    assert requests.post(f"{rooms}/CreateRoom", json={"name": "call-in-progress"}, timeout=5).status_code == 200
    since = app.check_output("date -u '+%Y-%m-%d %H:%M:%S'")
    terminated_at = time.time()

    # Auto Scaling takes the instance to Terminated: Terminating:Wait under the hook.
    requests.post(
        f"{DOUBLES}/_doubles/target-lifecycle-state", json={"instance": instance, "state": "Terminated"}, timeout=5
    ).raise_for_status()
    deadline = time.monotonic() + 120
    while len(heartbeats()) < 3:
        assert time.monotonic() < deadline, app.check_output(f"journalctl -u cnt-scale-in --since '{since}' -o cat")
        time.sleep(1)
    # Draining, the call still on: out of the target group, LiveKit takes no new room,
    # LiveKit and the backend still run, the hook not completed. The voice agent drains
    # beside LiveKit: it finishes its jobs (it has none here: the double dispatches
    # none) and exits by itself, never killed.
    assert instance not in registered(arn)
    refused = requests.post(f"{rooms}/CreateRoom", json={"name": "a-new-call"}, timeout=5)
    assert refused.status_code == 503 and refused.json()["code"] == "unavailable"
    for name in ("cnt-livekit-server", "cnt-backend"):
        assert container(app, name)["State"]["Running"], name
    agent = container(app, "cnt-voice-agent")["State"]
    assert agent["Running"] or agent["ExitCode"] == 0, agent
    assert ours(lifecycle()) == []
    assert not app.service("cnt-pull.timer").is_running

    # The call ends: the drain finishes by itself.
    closed_at = time.time()
    assert requests.post(f"{rooms}/DeleteRoom", json={"room": "call-in-progress"}, timeout=5).status_code == 200
    deadline = time.monotonic() + 180
    while not ours(lifecycle()):
        assert time.monotonic() < deadline, app.check_output(f"journalctl -u cnt-scale-in --since '{since}' -o cat")
        time.sleep(1)
    completed = ours(lifecycle())
    assert [(r["group"], r["result"], r["accepted"]) for r in completed] == [(group, "CONTINUE", True)]
    beats = heartbeats()
    assert beats and all(r["accepted"] for r in beats)
    assert max(r["time"] for r in beats) <= completed[0]["time"]

    def finished(name: str) -> float:
        state = container(app, name)["State"]
        assert not state["Running"], name
        stamp = state["FinishedAt"].rstrip("Z")[:26]
        return datetime.datetime.fromisoformat(stamp).replace(tzinfo=datetime.UTC).timestamp()

    # LiveKit and the backend stopped only once the room closed; LiveKit and the agent
    # drained (exit 0, not SIGKILL), the agent not before Auto Scaling said Terminated;
    # the backend last; CONTINUE after them all.
    for name in ("cnt-livekit-server", "cnt-voice-agent"):
        assert container(app, name)["State"]["ExitCode"] == 0, name
    stops = {name: finished(name) for name in SERVICES}
    assert stops["cnt-livekit-server"] >= closed_at - 1 and stops["cnt-backend"] >= closed_at - 1
    assert stops["cnt-voice-agent"] >= terminated_at - 1
    assert stops["cnt-backend"] >= stops["cnt-livekit-server"]
    assert max(stops.values()) <= completed[0]["time"]
    journal = app.check_output(f"journalctl -u cnt-scale-in --since '{since}' -o cat")
    order = [
        f"{instance} in {group} is being terminated",
        f"deregistered from {arn}",
        "stopping cnt-livekit-server, cnt-voice-agent",
        "cnt-livekit-server: stopped after",
        "stopping cnt-backend",
        "cnt-terminate completed with CONTINUE",
    ]
    positions = [journal.find(step) for step in order]
    assert -1 not in positions and positions == sorted(positions), journal
