"""The cnt_config filters: .env files and Redis URLs that read back exactly."""

from __future__ import annotations

import importlib.util
import json
from urllib.parse import unquote

import pytest
from ansible.errors import AnsibleFilterError
from conftest import ROOT
from dotenv import dotenv_values
from hostile import REFUSED, ROUND_TRIP
from redis.connection import parse_url

_spec = importlib.util.spec_from_file_location(
    "cnt_config_filters", ROOT / "roles/cnt_config/filter_plugins/cnt_config.py"
)
filters = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(filters)


def write_and_read(tmp_path, entries):
    path = tmp_path / "backend.env"
    path.write_bytes(filters.cnt_dotenv(entries).encode("utf-8"))
    return dotenv_values(path)


def test_every_hostile_value_reads_back_byte_for_byte(tmp_path):
    assert write_and_read(tmp_path, ROUND_TRIP) == ROUND_TRIP


@pytest.mark.parametrize("key", sorted(ROUND_TRIP))
def test_each_hostile_value_reads_back_alone(tmp_path, key):
    # Alone too: a value must not depend on its neighbours to parse right.
    assert write_and_read(tmp_path, {key: ROUND_TRIP[key]}) == {key: ROUND_TRIP[key]}


def test_numbers_are_refused_naming_the_key():
    """YAML rewrites numbers (0800 -> 800, 1.10 -> 1.1) and Docker's API refuses them."""
    problems = filters.cnt_dotenv_problems({"PORT": 8000, "RATIO": 1.1, "FINE": "8000"})
    assert [p.split(":")[0] for p in problems] == ["PORT", "RATIO"]
    assert all("must be a string" in p and "quote it" in p for p in problems)


@pytest.mark.parametrize("value", ["a\nb", "tab\t", "esc\x1b[0m", "del\x7f", "nul\x00"])
def test_control_characters_are_found_in_strings_keys_and_nested_values(value):
    assert filters.cnt_control_characters({"A": value, "B": "fine", "C": 7}) == ["A"]
    assert filters.cnt_control_characters({"K": {value: "x"}, "L": {"x": [value]}}) == ["K", "L"]
    assert filters.cnt_control_characters({"A": "printable: # % é 日本"}) == []


@pytest.mark.parametrize("key", sorted(REFUSED))
def test_a_value_that_cannot_round_trip_is_refused_naming_its_key(key):
    value, reason = REFUSED[key]
    with pytest.raises(AnsibleFilterError) as error:
        filters.cnt_dotenv({"FINE": "ok", key: value})
    assert key in str(error.value)
    assert reason in str(error.value)
    assert "FINE" not in str(error.value)


@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        ({"1BAD": "x"}, "'1BAD' is not a valid environment variable name"),
        ({"HAS-DASH": "x"}, "'HAS-DASH' is not a valid environment variable name"),
        ({"FLAG": True}, "FLAG: the value must be a string, not bool"),
        ({"NOTHING": None}, "NOTHING: the value must be a string, not NoneType"),
        ({"LIST": ["a"]}, "LIST: the value must be a string, not list"),
        ({"PORT": 8000}, "PORT: the value must be a string, not int"),
    ],
)
def test_bad_names_and_types_are_refused(entries, reason):
    problems = filters.cnt_dotenv_problems(entries)
    assert len(problems) == 1
    assert problems[0].startswith(reason)


def test_a_value_is_never_printed_in_a_refusal():
    secret = "${TOP_SECRET_VALUE}"
    problems = filters.cnt_dotenv_problems({"TOKEN": secret})
    assert problems and all(secret not in p for p in problems)


def test_not_a_mapping_is_refused():
    assert filters.cnt_dotenv_problems(["A=1"]) == ["expected a mapping of environment entries, got list"]


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("", "plain-token-0123456789"),
        ("", "!&#$^<>-all-elasticache-specials"),
        ("app-user", "p@ss/w:rd?#%[] with space"),
        ("user@corp", "unicode-é-🎉"),
    ],
)
def test_redis_url_carries_credentials_exactly(username, password):
    url = filters.cnt_redis_url("primary.abc.euw2.cache.amazonaws.com", 6380, 3, True, username, password)
    assert url.startswith("rediss://")
    parsed = parse_url(url)
    assert parsed["host"] == "primary.abc.euw2.cache.amazonaws.com"
    assert parsed["port"] == 6380
    assert parsed["db"] == 3
    assert parsed["password"] == password
    assert parsed.get("username") == (username or None)
    assert parsed["connection_class"].__name__ == "SSLConnection"


def test_redis_url_without_auth_or_tls():
    url = filters.cnt_redis_url("redis.internal", 6379, 0, False)
    assert url == "redis://redis.internal:6379/0"
    assert "password" not in parse_url(url)


def test_redis_url_percent_encoding_is_undone_by_unquote():
    url = filters.cnt_redis_url("h", 6379, 0, True, "", "a/b@c")
    assert unquote(url.split("@")[0].split(":")[-1]) == "a/b@c"


# --- cnt_mask_secrets: what --diff may show of backend.env and livekit.yaml
PASSWORD = "p@ss/wörd:'x\"y"
SECRET = "livekit-secret-0123456789"


def rendered(password: str = PASSWORD, secret: str = SECRET) -> tuple[str, str]:
    env = filters.cnt_dotenv(
        {
            "REDIS_URL": filters.cnt_redis_url("redis.example", 6379, 0, True, "", password),
            "LIVEKIT_API_KEY": "APIkey1",
            "LIVEKIT_API_SECRET": secret,
            "STRIPE_TOKEN": "tok_live_abcdef",
            "LOG_LEVEL": "info",
            "NOTE": f"mentions {secret} inline",
        }
    )
    livekit = (
        "port: 7880\n"
        "redis:\n"
        '  address: "redis.example:6379"\n'
        f"  password: {json.dumps(password, ensure_ascii=False)}\n"
        "keys:\n"
        f'  "APIkey1": {json.dumps(secret)}\n'
        "logging:\n"
        '  level: "info"\n'
    )
    return env, livekit


def test_masking_leaves_no_secret_in_any_form():
    for text in rendered():
        masked = filters.cnt_mask_secrets(text, [PASSWORD, SECRET], "run-key")
        for form in filters._encodings(PASSWORD) | filters._encodings(SECRET) | {"tok_live_abcdef"}:
            assert form not in masked
        assert "********(" in masked


def test_masking_keeps_what_is_not_secret():
    env, livekit = rendered()
    masked_env = filters.cnt_mask_secrets(env, [PASSWORD, SECRET], "k", ["LIVEKIT_API_KEY"])
    # A .env value shows only when its key is named plain; every other one is masked.
    assert "LIVEKIT_API_KEY='APIkey1'" in masked_env and "LOG_LEVEL=********(" in masked_env
    masked_yaml = filters.cnt_mask_secrets(livekit, [PASSWORD, SECRET], "k")
    assert 'address: "redis.example:6379"' in masked_yaml and 'level: "info"' in masked_yaml
    assert '"APIkey1": ********(' in masked_yaml and "port: 7880" in masked_yaml


def test_an_old_secret_the_inventory_no_longer_knows_is_masked_by_position():
    """A rotated token: the file on the host still holds the old one."""
    old_env, old_yaml = rendered(password="old-token-abcdef", secret="old-livekit-secret-xyz")
    for old in (old_env, old_yaml):
        masked = filters.cnt_mask_secrets(old, [PASSWORD, SECRET], "k")
        assert "old-token-abcdef" not in masked and "old-livekit-secret-xyz" not in masked


def test_a_changed_secret_masks_differently_an_unchanged_one_the_same():
    before, _ = rendered(password="old-token-abcdef")
    after, _ = rendered()
    b = filters.cnt_mask_secrets(before, [PASSWORD, SECRET], "k").splitlines()
    a = filters.cnt_mask_secrets(after, [PASSWORD, SECRET], "k").splitlines()
    changed = [line_b.split("=")[0] for line_b, line_a in zip(b, a, strict=True) if line_b != line_a]
    assert changed == ["REDIS_URL"]
    assert b[-1] == a[-1]  # NOTE, unchanged, masks the same
    # Another run's key gives other fingerprints: nothing to compare across runs.
    assert filters.cnt_mask_secrets(after, [], "k") != filters.cnt_mask_secrets(after, [], "other")


def test_masking_without_a_key_shows_only_stars():
    env, _ = rendered()
    assert "LIVEKIT_API_SECRET=********\n" in filters.cnt_mask_secrets(env, [SECRET])


# Secrets whose names say nothing, values that span lines, LiveKit keys holding `:` and
# `#`: each secret, and each of its lines, must be gone from the masked text.
PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n"
    "-----END PRIVATE KEY-----"
)
UNNAMED = {
    "OPENAI_API_KEY": "sk-proj-openai-0123456789",
    "DEEPGRAM_API_KEY": "dg-0123456789abcdef",
    "DB_PASS": "db-pass-0123456789",
    "SMTP_PWD": "smtp-pwd-0123456789",
    "DATABASE_URL": "postgresql://app:dsn-pw-0123456789@db.internal:5432/app",
    "SENTRY": "https://abcdef0123456789@o1.ingest.sentry.io/1",
    "TLS_KEY": PEM,
    "FEATURE": "on",
}
EXTRA_KEYS = {"rot:ation#1": "extra-secret-with-colon-0123456789abcd", "k#2": "extra-secret-with-hash-0123456789abcd"}


def pieces(value: str) -> set[str]:
    return {value} | {line for line in value.splitlines() if line.strip()}


def test_every_backend_env_value_and_every_livekit_secret_is_masked_whatever_its_name():
    env = filters.cnt_dotenv(UNNAMED | {"LIVEKIT_URL": "ws://livekit:7880"})
    livekit = "keys:\n" + "".join(f"  {json.dumps(k)}: {json.dumps(v)}\n" for k, v in EXTRA_KEYS.items())
    livekit += 'logging:\n  level: "info"\n'
    for known in ([*UNNAMED.values(), *EXTRA_KEYS.values()], []):  # by value, and by position alone
        masked_env = filters.cnt_mask_secrets(env, known, "k", ["LIVEKIT_URL"])
        masked_yaml = filters.cnt_mask_secrets(livekit, known, "k")
        for value in [*UNNAMED.values(), *EXTRA_KEYS.values()]:
            for piece in pieces(value):
                if len(piece) >= 6:
                    assert piece not in masked_env and piece not in masked_yaml, piece
        assert "FEATURE=********(" in masked_env and "LIVEKIT_URL='ws://livekit:7880'" in masked_env
        # A multi-line value is one masked line; the lines after it are kept.
        assert masked_env.count("\n") == len(UNNAMED) + 1
        assert '"rot:ation#1": ********(' in masked_yaml and '"k#2": ********(' in masked_yaml
        assert 'level: "info"' in masked_yaml


def test_a_known_multi_line_secret_is_masked_line_by_line_wherever_it_stands():
    text = "note: " + json.dumps(PEM) + "\nraw:\n" + PEM.replace("\n", "\n  ") + "\n"
    masked = filters.cnt_mask_secrets(text, [PEM], "k")
    for piece in pieces(PEM):
        assert piece not in masked
