"""What the host holds after cnt_config ran, then ran again with one value changed."""

import io
from pathlib import Path

import yaml
from dotenv import dotenv_values
from redis.connection import parse_url

VARS = yaml.safe_load((Path(__file__).parents[1] / "vars" / "contract.yml").read_text(encoding="utf-8"))


def read_env(host, path):
    return dotenv_values(stream=io.StringIO(host.file(path).content_string))


def test_config_directory_is_root_only(host):
    directory = host.file("/etc/cnt")
    assert directory.is_directory
    assert (directory.user, directory.group, directory.mode) == ("root", "root", 0o700)


def test_files_holding_secrets_are_root_owned_0600(host):
    for name in ("backend.env", "livekit.yaml", "backend.env.previous"):
        f = host.file(f"/etc/cnt/{name}")
        assert (f.user, f.group, f.mode) == ("root", "root", 0o600), name


def test_backend_env_holds_the_changed_value_and_the_contract(host):
    env = read_env(host, "/etc/cnt/backend.env")
    assert env["SPACES"] == "changed"
    assert env["LIVEKIT_API_KEY"] == VARS["cnt_livekit_api_key"]
    assert env["LIVEKIT_API_SECRET"] == VARS["cnt_livekit_api_secret"]
    assert env["LIVEKIT_URL"] == VARS["cnt_livekit_url"]
    redis = parse_url(env["REDIS_URL"])
    assert (redis["host"], redis["port"], redis["db"]) == ("redis.internal", 6380, 3)
    assert (redis["username"], redis["password"]) == ("app user", VARS["cnt_redis_password"])


def test_previous_backend_env_holds_every_value_byte_for_byte(host):
    env = read_env(host, "/etc/cnt/backend.env.previous")
    expected = {k: str(v) for k, v in VARS["cnt_backend_env"].items()}
    assert {k: env[k] for k in expected} == expected


def test_livekit_yaml_carries_redis_keys_and_node_ip(host):
    livekit = yaml.safe_load(host.file("/etc/cnt/livekit.yaml").content_string)
    assert livekit["redis"] == {
        "address": "redis.internal:6380",
        "username": "app user",
        "password": VARS["cnt_redis_password"],
        "db": 3,
        "tls": {"enabled": True},
    }
    assert livekit["keys"] == {VARS["cnt_livekit_api_key"]: VARS["cnt_livekit_api_secret"]}
    assert livekit["region"] == "eu-west-2: yes"
    address = host.interface.default().addresses[0]
    assert livekit["rtc"]["node_ip"] == address
    assert livekit["rtc"]["use_external_ip"] is False


def test_unchanged_livekit_yaml_kept_no_previous_version(host):
    assert not host.file("/etc/cnt/livekit.yaml.previous").exists


def test_no_timestamped_backups_are_left(host):
    names = host.check_output("ls -A /etc/cnt").split()
    assert sorted(names) == ["backend.env", "backend.env.previous", "livekit.yaml"]


def test_change_handler_ran_once_per_actual_change(host):
    # converge wrote both files, idempotence changed nothing, side_effect changed backend.env.
    lines = host.file("/var/log/cnt-config-changes.log").content_string.splitlines()
    assert [line.split()[1] for line in lines] == [
        "/etc/cnt/backend.env",
        "/etc/cnt/livekit.yaml",
        "/etc/cnt/backend.env",
    ]
