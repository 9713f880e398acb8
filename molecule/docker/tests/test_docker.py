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
