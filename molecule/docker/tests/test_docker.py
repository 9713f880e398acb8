"""What an operator sees on a host after the docker role ran."""

import json
import re


def test_docker_service_is_running_and_enabled(host):
    service = host.service("docker")
    assert service.is_running
    assert service.is_enabled


def test_daemon_json_holds_production_defaults_and_extras(host):
    daemon_json = host.file("/etc/docker/daemon.json")
    assert daemon_json.user == "root"
    assert daemon_json.mode == 0o644
    assert json.loads(daemon_json.content_string) == {
        "log-driver": "json-file",
        # max-size from the defaults, max-file from docker_daemon_options_extra (merged).
        "log-opts": {"max-size": "10m", "max-file": "3"},
        "live-restore": True,
    }


def test_engine_runs_with_daemon_json(host):
    info = json.loads(host.check_output("docker info --format '{{json .}}'"))
    assert info["LoggingDriver"] == "json-file"
    assert info["LiveRestoreEnabled"] is True


def test_deploy_user_is_in_docker_group(host):
    assert "docker" in host.user("deploy").groups


def test_modules_dependencies_are_installed(host):
    assert host.run("python3 -c 'import requests'").rc == 0


def test_a_container_runs_inside_the_instance(host):
    """Build an image from the instance's static busybox (no registry) and run it."""
    build = host.run(
        "set -e; d=$(mktemp -d); mkdir -p $d/bin; cp /bin/busybox $d/bin/busybox; "
        "tar -C $d -c . | docker import - cnt-smoke:test >/dev/null; rm -rf $d"
    )
    assert build.rc == 0, build.stderr
    run = host.run("docker run --rm cnt-smoke:test /bin/busybox echo hello-from-inner-engine")
    assert run.rc == 0, run.stderr
    assert run.stdout.strip() == "hello-from-inner-engine"


def test_compose_plugin_is_installed_where_the_source_packages_one(host):
    # docker.io packages compose v2 as `docker-compose` from trixie on; bookworm has none.
    result = host.run("docker compose version")
    if host.system_info.codename == "bookworm":
        assert result.rc != 0
    else:
        assert result.rc == 0, result.stderr
        assert re.search(r"version v?2\.", result.stdout), result.stdout


# Instance metadata stands off the host, reached through Docker's forwarding path. Here a
# network namespace on the instance serves two addresses the same way: the scenario
# blocks 169.254.170.254 (beside the default, 169.254.169.254, which no test may reach),
# and leaves 169.254.170.253 open, so the test shows the rule and nothing else refuses.
NETNS_SETUP = """
set -e
ip netns add cnt-imds
ip link add cnt-imds0 type veth peer name cnt-imds1 netns cnt-imds
ip addr add 169.254.170.1/30 dev cnt-imds0
ip link set cnt-imds0 up
ip -n cnt-imds addr add 169.254.170.2/30 dev cnt-imds1
ip -n cnt-imds link set cnt-imds1 up
ip -n cnt-imds link set lo up
ip -n cnt-imds addr add 169.254.170.254/32 dev lo
ip -n cnt-imds addr add 169.254.170.253/32 dev lo
ip -n cnt-imds route add default via 169.254.170.1
ip route add 169.254.170.252/30 via 169.254.170.2
ip netns exec cnt-imds setsid python3 -m http.server 8080 >/dev/null 2>&1 < /dev/null &
sleep 1
"""
NETNS_TEARDOWN = (
    "pkill -f 'http.server 8080'; ip link del cnt-imds0; ip route del 169.254.170.252/30; ip netns del cnt-imds"
)
RULE = "-d 169.254.170.254/32 -j REJECT -m comment --comment 'cnt-deploy docker_blocked_destinations'"


def from_container(host, address):
    """Connect from a container on the default bridge (busybox nc: bookworm's static
    busybox wget crashes)."""
    return host.run(f"docker run --rm cnt-smoke:test /bin/busybox nc -w 5 {address} 8080 < /dev/null")


def test_containers_on_the_bridge_cannot_reach_a_blocked_destination_even_after_an_engine_restart(host):
    setup = host.run(NETNS_SETUP)
    assert setup.rc == 0, setup.stderr
    try:
        on_host = (
            "python3 -c \"import urllib.request; urllib.request.urlopen('http://169.254.170.254:8080/', timeout=5)\""
        )
        assert host.run(on_host).rc == 0, "the host itself reaches the address"
        assert from_container(host, "169.254.170.253").rc == 0, "a container reaches the open address"
        blocked = from_container(host, "169.254.170.254")
        assert blocked.rc != 0 and "refused" in (blocked.stdout + blocked.stderr).lower()

        # A reboot or an engine restart starts with the rule gone: it comes back with the engine.
        assert host.run(f"iptables -D DOCKER-USER {RULE}").rc == 0
        assert from_container(host, "169.254.170.254").rc == 0, "without the rule the address answers"
        assert (
            host.run("systemctl restart docker && timeout 60 sh -c 'until docker info >/dev/null; do sleep 1; done'").rc
            == 0
        )
        rules = host.check_output("iptables -S DOCKER-USER")
        assert "-d 169.254.170.254/32" in rules and "-d 169.254.169.254/32" in rules
        assert from_container(host, "169.254.170.254").rc != 0
    finally:
        host.run(NETNS_TEARDOWN)
