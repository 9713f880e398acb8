"""playbooks/validate.yml: refuses bad inventories naming the variable, renders good
ones for every host, and never contacts a host (they do not even resolve here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values
from hostile import ROUND_TRIP, dump_unsafe
from redis.connection import parse_url

GOOD = {
    "cnt_environment": "staging",
    "cnt_redis_host": "cnt-staging.abc123.ng.0001.euw2.cache.amazonaws.com",
    "cnt_redis_port": 6379,
    "cnt_redis_tls": True,
    "cnt_redis_password": "AuthToken0123456789!&#$^<>-",
    "cnt_redis_db": 2,
    "cnt_livekit_api_key": "APIkey123",
    "cnt_livekit_api_secret": "s" * 40,
    "cnt_livekit_url": "wss://livekit.example.org",
    "cnt_app_version": "v1.2.3",
    "cnt_backend_env": {"APP_ENV": "staging"},
}

# One host per bad case: (variables to change, variable named, words of the message).
BAD = {
    "missing-endpoint": ({"cnt_redis_host": ""}, "cnt_redis_host", "is required"),
    "endpoint-with-scheme": (
        {"cnt_redis_host": "rediss://cnt.abc.cache.amazonaws.com"},
        "cnt_redis_host",
        "host name only",
    ),
    "endpoint-with-port": (
        {"cnt_redis_host": "cnt.abc.cache.amazonaws.com:6379"},
        "cnt_redis_host",
        "host name only",
    ),
    "cluster-endpoint": (
        {"cnt_redis_host": "cnt.clustercfg.euw2.cache.amazonaws.com"},
        "cnt_redis_host",
        "cluster mode",
    ),
    "port-zero": ({"cnt_redis_port": 0}, "cnt_redis_port", "from 1 to 65535"),
    "port-too-big": ({"cnt_redis_port": 70000}, "cnt_redis_port", "from 1 to 65535"),
    "db-out-of-range": ({"cnt_redis_db": 16}, "cnt_redis_db", "from 0 to 15"),
    "tls-as-string": ({"cnt_redis_tls": "yes"}, "cnt_redis_tls", "must be a boolean"),
    "missing-key": ({"cnt_livekit_api_key": ""}, "cnt_livekit_api_key", "is required"),
    "short-secret": ({"cnt_livekit_api_secret": "x" * 31}, "cnt_livekit_api_secret", "32"),
    "extra-key-short-secret": ({"cnt_livekit_extra_keys": {"APInext": "x" * 31}}, "cnt_livekit_extra_keys", "32"),
    "extra-key-is-the-signing-key": (
        {"cnt_livekit_extra_keys": {"APIkey123": "y" * 40}},
        "cnt_livekit_extra_keys",
        "the signing key",
    ),
    "extra-keys-not-a-mapping": ({"cnt_livekit_extra_keys": ["APInext"]}, "cnt_livekit_extra_keys", "dict"),
    "elasticache-auth-without-tls": ({"cnt_redis_tls": False}, "cnt_redis_tls", "over in-transit"),
    "livekit-url-http": (
        {"cnt_livekit_url": "https://livekit.example.org"},
        "cnt_livekit_url",
        "ws:// or wss://",
    ),
    "backend-env-list": ({"cnt_backend_env": ["A=1"]}, "cnt_backend_env", "convert to dict"),
    "backend-env-bad-name": (
        {"cnt_backend_env": {"BAD-NAME": "x"}},
        "cnt_backend_env",
        "'BAD-NAME' is not a valid environment variable name",
    ),
    "backend-env-interpolation": (
        {"cnt_backend_env": {"TOKEN": "${HOME}"}},
        "cnt_backend_env",
        "TOKEN: the value holds '${...}'",
    ),
    "backend-env-overrides-redis": (
        {"cnt_backend_env": {"REDIS_URL": "redis://elsewhere"}},
        "cnt_backend_env",
        "must not set REDIS_URL",
    ),
    "elasticache-token-bad-chars": (
        {"cnt_redis_password": "has/slash-and-is-long-enough"},
        "cnt_redis_password",
        "AUTH token",
    ),
    "username-without-password": (
        {"cnt_redis_username": "app", "cnt_redis_password": ""},
        "cnt_redis_password",
        "required when cnt_redis_username",
    ),
    "backend-env-number": (
        {"cnt_backend_env": {"WORKERS": 4}},
        "cnt_backend_env",
        "WORKERS: the value must be a string",
    ),
    "endpoint-with-hash": ({"cnt_redis_host": "redis.internal#x"}, "cnt_redis_host", "letters, digits"),
    "endpoint-with-percent": ({"cnt_redis_host": "redis%2einternal"}, "cnt_redis_host", "letters, digits"),
    "endpoint-with-newline": ({"cnt_redis_host": "redis.internal\n"}, "cnt_redis_host", "letters, digits"),
    "node-ip-trailing-newline": ({"cnt_livekit_node_ip": "10.0.0.5\n"}, "cnt_livekit_node_ip", "IPv4 or IPv6"),
    "livekit-url-with-hash": ({"cnt_livekit_url": "wss://live#kit.example.org"}, "cnt_livekit_url", "ws:// or wss://"),
    "control-in-region": (
        {"cnt_config_livekit_region": "eu\x1b[31m"},
        "cnt_config_livekit_region",
        "control character",
    ),
    "control-in-extra-key": (
        {"cnt_livekit_extra_keys": {"APInext\n": "z" * 40}},
        "cnt_livekit_extra_keys",
        "control character",
    ),
    "control-in-api-secret": (
        {"cnt_livekit_api_secret": "s" * 40 + "\t"},
        "cnt_livekit_api_secret",
        "control character",
    ),
    "bad-environment": ({"cnt_environment": "prod"}, "cnt_environment", "must be one of"),
    "missing-version": ({"cnt_app_version": ""}, "cnt_app_version", "is required"),
}


def make_inventory(tmp_path: Path, group_vars: dict, hosts: dict[str, dict]) -> Path:
    inventory = tmp_path / "inventory"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "group_vars" / "all" / "cnt.yml").write_text("---\n" + dump_unsafe(group_vars), encoding="utf-8")
    host_entries = {
        name: {
            # Hosts that cannot be reached or even resolved: validate must not try.
            "ansible_host": f"{name}.invalid",
            "ansible_connection": "ssh",
            **variables,
        }
        for name, variables in hosts.items()
    }
    (inventory / "hosts.yml").write_text(
        "---\n" + dump_unsafe({"app_servers": {"hosts": host_entries}}), encoding="utf-8"
    )
    return inventory


def run_validate(ansible_playbook, inventory: Path, render_dir: Path | None = None):
    args = ["-i", str(inventory), "playbooks/validate.yml"]
    if render_dir:
        args += ["-e", json.dumps({"render_dir": str(render_dir)})]
    result = ansible_playbook(*args, env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"})
    return result, json.loads(result.stdout)


def messages(report: dict[str, Any]) -> dict[str, str]:
    """Every failure message per host, nested loop results included."""
    found: dict[str, list[str]] = {}

    def walk(host: str, result: dict[str, Any]) -> None:
        if result.get("failed") and isinstance(result.get("msg"), str):
            found.setdefault(host, []).append(result["msg"])
        for item in result.get("results", []):
            walk(host, item)

    for play in report["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                walk(host, result)
    return {host: "\n".join(msgs) for host, msgs in found.items()}


def test_each_bad_case_is_refused_naming_the_variable(tmp_path, ansible_playbook):
    inventory = make_inventory(
        tmp_path, GOOD, {name: overrides for name, (overrides, _, _) in BAD.items()} | {"ok": {}}
    )
    render_dir = tmp_path / "rendered"
    result, report = run_validate(ansible_playbook, inventory, render_dir)
    assert result.returncode != 0
    failures = messages(report)
    for name, (_, variable, words) in BAD.items():
        assert name in failures, f"{name} was not refused"
        assert variable in failures[name], failures[name]
        assert words in failures[name], failures[name]
        assert not (render_dir / name).exists(), f"{name} was rendered although refused"
    # The good host among them passes and is rendered.
    assert "ok" not in failures
    assert (render_dir / "ok" / "backend.env").is_file()


def test_no_secret_is_printed_when_validation_fails(tmp_path, ansible_playbook):
    secret = "TopSecretToken0123456789"
    inventory = make_inventory(
        tmp_path,
        GOOD | {"cnt_redis_password": secret, "cnt_livekit_api_secret": "short-" + secret},
        {"h1": {"cnt_redis_tls": False}},
    )
    result, _ = run_validate(ansible_playbook, inventory)
    assert result.returncode != 0
    assert secret not in result.stdout + result.stderr


def test_an_inventory_without_app_servers_is_refused(tmp_path, ansible_playbook):
    inventory = tmp_path / "empty.yml"
    inventory.write_text("---\nall:\n  hosts:\n    other:\n", encoding="utf-8")
    result, report = run_validate(ansible_playbook, inventory)
    assert result.returncode != 0
    assert "no host in the group app_servers" in messages(report)["localhost"]


def test_plaintext_redis_in_production_warns_loudly(tmp_path, ansible_playbook):
    inventory = make_inventory(
        tmp_path,
        GOOD
        | {
            "cnt_environment": "production",
            "cnt_redis_host": "redis.internal",
            "cnt_redis_tls": False,
            "cnt_redis_password": "",
        },
        {"h1": {}},
    )
    result, _ = run_validate(ansible_playbook, inventory)
    assert result.returncode == 0, result.stdout
    assert "WARNING: cnt_redis_tls is false in production" in result.stdout


def test_good_inventory_renders_every_host_exactly(tmp_path, ansible_playbook):
    hostile_password = "p@ss/w:rd ?#&^<>'\"\\ é"
    group_vars = GOOD | {
        # Not an ElastiCache host name: any password characters are allowed.
        "cnt_redis_host": "redis.internal",
        "cnt_redis_username": "app user",
        "cnt_redis_password": hostile_password,
        "cnt_livekit_api_key": "key: with # specials",
        "cnt_livekit_api_secret": "secret 'with' \"quotes\" and \\ {{ braces }} " + "x" * 10,
        "cnt_backend_env": ROUND_TRIP,
        "cnt_config_livekit_region": "eu-west-2: yes",
        "cnt_config_livekit_turn": {
            "enabled": True,
            "domain": "turn.example.org",
            "tls_port": 5349,
        },
    }
    inventory = make_inventory(tmp_path, group_vars, {"app-1": {"cnt_livekit_node_ip": "10.0.1.11"}, "app-2": {}})
    render_dir = tmp_path / "rendered"
    result, _ = run_validate(ansible_playbook, inventory, render_dir)
    assert result.returncode == 0, result.stdout

    for host in ("app-1", "app-2"):
        env_file = render_dir / host / "backend.env"
        livekit_file = render_dir / host / "livekit.yaml"
        assert env_file.stat().st_mode & 0o777 == 0o600
        assert livekit_file.stat().st_mode & 0o777 == 0o600

        env = dotenv_values(env_file)
        assert list(env)[:4] == [
            "REDIS_URL",
            "LIVEKIT_URL",
            "LIVEKIT_API_KEY",
            "LIVEKIT_API_SECRET",
        ]
        assert env["LIVEKIT_API_KEY"] == group_vars["cnt_livekit_api_key"]
        assert env["LIVEKIT_API_SECRET"] == group_vars["cnt_livekit_api_secret"]
        assert env["LIVEKIT_URL"] == "wss://livekit.example.org"
        assert {k: env[k] for k in ROUND_TRIP} == ROUND_TRIP

        redis_url = parse_url(env["REDIS_URL"])
        assert redis_url["username"] == "app user"
        assert redis_url["password"] == hostile_password
        assert (redis_url["host"], redis_url["port"], redis_url["db"]) == (
            "redis.internal",
            6379,
            2,
        )
        assert redis_url["connection_class"].__name__ == "SSLConnection"

        livekit = yaml.safe_load(livekit_file.read_text(encoding="utf-8"))
        assert livekit["redis"] == {
            "address": "redis.internal:6379",
            "username": "app user",
            "password": hostile_password,
            "db": 2,
            "tls": {"enabled": True},
        }
        assert livekit["keys"] == {group_vars["cnt_livekit_api_key"]: group_vars["cnt_livekit_api_secret"]}
        assert livekit["region"] == "eu-west-2: yes"
        assert livekit["turn"] == {"enabled": True, "domain": "turn.example.org", "tls_port": 5349}
        assert livekit["port"] == 7880
        assert livekit["rtc"]["tcp_port"] == 7881
        assert (livekit["rtc"]["port_range_start"], livekit["rtc"]["port_range_end"]) == (
            50000,
            60000,
        )
        assert set(livekit) <= {
            "port",
            "rtc",
            "redis",
            "keys",
            "logging",
            "region",
            "turn",
            "room",
            "webhook",
            "prometheus",
        }

    assert yaml.safe_load((render_dir / "app-1/livekit.yaml").read_text())["rtc"]["node_ip"] == "10.0.1.11"
    assert yaml.safe_load((render_dir / "app-2/livekit.yaml").read_text())["rtc"] == {
        "tcp_port": 7881,
        "port_range_start": 50000,
        "port_range_end": 60000,
        "use_external_ip": True,
    }


def test_livekit_accepts_the_extra_keys_of_a_rotation_and_only_the_signing_key_signs(tmp_path, ansible_playbook):
    extra = {"APInext": "n" * 40, "key: with # specials": "secret 'with' \"quotes\" " + "y" * 30}
    inventory = make_inventory(tmp_path, GOOD | {"cnt_livekit_extra_keys": extra}, {"h1": {}})
    render_dir = tmp_path / "rendered"
    result, _ = run_validate(ansible_playbook, inventory, render_dir)
    assert result.returncode == 0, result.stdout
    livekit = yaml.safe_load((render_dir / "h1/livekit.yaml").read_text(encoding="utf-8"))
    assert livekit["keys"] == {GOOD["cnt_livekit_api_key"]: GOOD["cnt_livekit_api_secret"], **extra}
    env = dotenv_values(render_dir / "h1/backend.env")
    assert (env["LIVEKIT_API_KEY"], env["LIVEKIT_API_SECRET"]) == ("APIkey123", "s" * 40)
    assert "n" * 40 not in result.stdout


YAML_SPECIALS = ["0o17", "yes", "~", "1e3", "- item", "[x]", "{y: z}", "a: b", "'q'", "日本", "#c"]


def test_yaml_special_strings_stay_strings_in_livekit_yaml(tmp_path, ansible_playbook):
    hosts = {f"h{i}": {"cnt_config_livekit_region": v} for i, v in enumerate(YAML_SPECIALS)}
    inventory = make_inventory(tmp_path, GOOD, hosts)
    render_dir = tmp_path / "rendered"
    result, _ = run_validate(ansible_playbook, inventory, render_dir)
    assert result.returncode == 0, result.stdout
    for host, variables in hosts.items():
        livekit = yaml.safe_load((render_dir / host / "livekit.yaml").read_text(encoding="utf-8"))
        assert livekit["region"] == variables["cnt_config_livekit_region"]
