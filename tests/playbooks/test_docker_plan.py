"""Task selection of the docker role on every supported platform.

Molecule converges Debian 12 and 13 only (no Ubuntu or Amazon Linux archive is
reachable here). These tests run the role's plan (tasks/plan.yml: what to install,
from where, with which package manager) against the facts of each platform, so a
change that breaks Ubuntu or Amazon Linux 2023 selection fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible.plugins.loader import cache_loader
from conftest import ROOT

PLATFORMS = {
    "debian12": ("Debian", "12", "12.11", "bookworm", "Debian"),
    "debian13": ("Debian", "13", "13.1", "trixie", "Debian"),
    "ubuntu2204": ("Ubuntu", "22", "22.04", "jammy", "Debian"),
    "ubuntu2404": ("Ubuntu", "24", "24.04", "noble", "Debian"),
    "al2023": ("Amazon", "2023", "2023", "", "RedHat"),
    "centos9": ("CentOS", "9", "9", "", "RedHat"),
}


def plan(tmp_path: Path, ansible_playbook, hosts: list[str], **extra_vars: object):
    """Run the plan for `hosts` (names from PLATFORMS); return (result, plans by host)."""
    cache_dir = tmp_path / "facts"
    # Written through Ansible's own cache plugin, so the format is always the one the
    # installed ansible-core reads back.
    cache = cache_loader.get("jsonfile", _uri=str(cache_dir))
    for host in hosts:
        distribution, major, version, release, family = PLATFORMS[host]
        cache.set(
            host,
            {
                "ansible_distribution": distribution,
                "ansible_distribution_major_version": major,
                "ansible_distribution_version": version,
                "ansible_distribution_release": release,
                "ansible_os_family": family,
            },
        )
    out_dir = tmp_path / "plans"
    out_dir.mkdir()
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("\n".join(f"{h} ansible_connection=local" for h in hosts) + "\n", encoding="utf-8")
    variables = {"out_dir": str(out_dir), **extra_vars}
    result = ansible_playbook(
        "-i",
        str(inventory),
        "-e",
        json.dumps(variables),
        "tests/playbooks/plays/docker_plan.yml",
        env={
            "ANSIBLE_CACHE_PLUGIN": "jsonfile",
            "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(cache_dir),
            "ANSIBLE_CACHE_PLUGIN_TIMEOUT": "0",
        },
    )
    plans = {p.stem: json.loads(p.read_text()) for p in out_dir.glob("*.json")}
    return result, plans


def test_default_source_is_docker_official_on_debian_and_ubuntu(tmp_path, ansible_playbook):
    hosts = ["debian12", "debian13", "ubuntu2204", "ubuntu2404"]
    result, plans = plan(tmp_path, ansible_playbook, hosts)
    assert result.returncode == 0, result.stdout + result.stderr
    for host in hosts:
        distro = "ubuntu" if host.startswith("ubuntu") else "debian"
        assert plans[host] == {
            "source": "official",
            "package_manager": "apt",
            "packages": [
                "docker-ce",
                "docker-ce-cli",
                "containerd.io",
                "docker-compose-plugin",
                "python3-requests",
            ],
            "compose_plugin": True,
            "repository": f"https://download.docker.com/linux/{distro}",
        }, host


def test_amazon_linux_2023_uses_its_own_docker_package_with_dnf(tmp_path, ansible_playbook):
    result, plans = plan(tmp_path, ansible_playbook, ["al2023"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert plans["al2023"] == {
        "source": "amazon",
        "package_manager": "dnf",
        "packages": ["docker", "python3-requests"],
        "compose_plugin": False,
        "repository": "",
    }


def test_distribution_source_packages_compose_only_where_it_exists(tmp_path, ansible_playbook):
    hosts = ["debian12", "debian13", "ubuntu2204", "ubuntu2404"]
    result, plans = plan(tmp_path, ansible_playbook, hosts, docker_source="distribution")
    assert result.returncode == 0, result.stdout + result.stderr
    assert plans["debian12"]["packages"] == ["docker.io", "python3-requests"]
    assert plans["debian13"]["packages"] == ["docker.io", "docker-compose", "python3-requests"]
    for host in ("ubuntu2204", "ubuntu2404"):
        assert plans[host]["packages"] == ["docker.io", "docker-compose-v2", "python3-requests"]
    assert all(p["repository"] == "" for p in plans.values())


def test_pinned_versions_use_each_package_managers_syntax(tmp_path, ansible_playbook):
    result, plans = plan(
        tmp_path,
        ansible_playbook,
        ["debian12", "al2023"],
        docker_version="5:27.5.1-1~debian.12~bookworm",
        docker_compose_version="2.32.4-1~debian.12~bookworm",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert plans["debian12"]["packages"][:4] == [
        "docker-ce=5:27.5.1-1~debian.12~bookworm",
        "docker-ce-cli=5:27.5.1-1~debian.12~bookworm",
        "containerd.io",
        "docker-compose-plugin=2.32.4-1~debian.12~bookworm",
    ]
    assert plans["al2023"]["packages"][0] == "docker-5:27.5.1-1~debian.12~bookworm"


def test_compose_plugin_can_be_left_out(tmp_path, ansible_playbook):
    result, plans = plan(tmp_path, ansible_playbook, ["ubuntu2404"], docker_compose_plugin=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "docker-compose-plugin" not in plans["ubuntu2404"]["packages"]
    assert plans["ubuntu2404"]["compose_plugin"] is False


@pytest.mark.parametrize("package_manager", ["apt", "dnf"])
def test_every_package_manager_has_its_install_tasks(package_manager):
    assert (ROOT / "roles/docker/tasks" / f"install_{package_manager}.yml").is_file()


@pytest.mark.parametrize(
    ("host", "source", "message"),
    [
        ("al2023", "official", "docker_source=official is not available on Amazon"),
        ("debian12", "amazon", "docker_source=amazon is not available on Debian"),
    ],
)
def test_a_source_the_platform_lacks_is_refused(tmp_path, ansible_playbook, host, source, message):
    result, plans = plan(tmp_path, ansible_playbook, [host], docker_source=source)
    assert result.returncode != 0
    assert message in result.stdout
    assert plans == {}


def test_an_unsupported_platform_is_refused_by_name(tmp_path, ansible_playbook):
    result, plans = plan(tmp_path, ansible_playbook, ["centos9"])
    assert result.returncode != 0
    assert "this host runs CentOS 9" in result.stdout
    assert plans == {}
