"""Filters that turn the inventory contract into the stack's configuration files.

No builtin does these jobs exactly:
- `cnt_dotenv` writes a .env file that python-dotenv's `dotenv_values` (what
  pydantic-settings uses) reads back byte for byte, and refuses, naming the key, any
  value that cannot be written so. python-dotenv expands `${VAR}` even inside single
  quotes and has no escape for it, and text-mode reading turns a carriage return into a
  newline.
- `cnt_dotenv_problems` lists those refusals without raising, for validation.
- `cnt_redis_url` builds `redis://` / `rediss://` URLs with the user name and password
  percent-encoded in full (Jinja's urlencode leaves `/` alone, which breaks the URL).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

from ansible.errors import AnsibleFilterError

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The exact pattern python-dotenv interpolates (dotenv/variables.py, _posix_variable).
DOTENV_INTERPOLATION = re.compile(r"\$\{[^\}:]*(?::-[^\}]*)?\}")


def _value_problem(key: object, value: object) -> str | None:
    """Why `value` cannot be written for `key`, or None when it can."""
    if not isinstance(key, str) or not ENV_NAME.match(key):
        return f"{key!r} is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)"
    if isinstance(value, bool) or value is None or not isinstance(value, str | int | float):
        return (
            f"{key}: the value must be a string or a number, not {type(value).__name__}"
            " (quote it in YAML to keep it as written)"
        )
    text = str(value)
    if DOTENV_INTERPOLATION.search(text):
        return f"{key}: the value holds '${{...}}', which python-dotenv would expand"
    if "\r" in text:
        return f"{key}: the value holds a carriage return, which a .env file cannot keep"
    if "\0" in text:
        return f"{key}: the value holds a NUL character, which no environment can hold"
    return None


def cnt_dotenv_problems(entries: object) -> list[str]:
    """Every reason `entries` (a mapping) cannot be written as a .env file."""
    if not isinstance(entries, Mapping):
        return [f"expected a mapping of environment entries, got {type(entries).__name__}"]
    return [p for k, v in entries.items() if (p := _value_problem(k, v)) is not None]


def _quote(value: str | int | float) -> str:
    # Single quotes: python-dotenv decodes only \\ and \' inside them.
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def cnt_dotenv(entries: object) -> str:
    """Render `entries` as .env lines (KEY='value'), refusing what cannot round-trip."""
    problems = cnt_dotenv_problems(entries)
    if problems:
        raise AnsibleFilterError("cannot write the .env file: " + "; ".join(problems))
    assert isinstance(entries, Mapping)
    return "".join(f"{key}={_quote(value)}\n" for key, value in entries.items())


def cnt_redis_url(
    host: str,
    port: int = 6379,
    db: int = 0,
    tls: bool = False,
    username: str | None = None,
    password: str | None = None,
) -> str:
    """The URL redis-py (and so python-socketio's AsyncRedisManager) connects with."""
    if not host:
        raise AnsibleFilterError("cnt_redis_url: the Redis host is empty")
    userinfo = ""
    if password:
        userinfo = f"{quote(username or '', safe='')}:{quote(str(password), safe='')}@"
    elif username:
        userinfo = f"{quote(username, safe='')}@"
    scheme = "rediss" if tls else "redis"
    return f"{scheme}://{userinfo}{host}:{int(port)}/{int(db)}"


class FilterModule:
    """Ansible entry point."""

    def filters(self):
        return {
            "cnt_dotenv": cnt_dotenv,
            "cnt_dotenv_problems": cnt_dotenv_problems,
            "cnt_redis_url": cnt_redis_url,
        }
