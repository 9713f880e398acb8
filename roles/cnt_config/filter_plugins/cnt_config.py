"""Filters that turn the inventory contract into the stack's configuration files.

No builtin does these jobs exactly:
- `cnt_dotenv` writes a .env file that python-dotenv's `dotenv_values` (what
  pydantic-settings uses) reads back byte for byte, and refuses, naming the key, any
  value that cannot be written so. python-dotenv expands `${VAR}` even inside single
  quotes and has no escape for it, and text-mode reading turns a carriage return into a
  newline.
- `cnt_dotenv_problems` lists those refusals without raising, for validation.
- `cnt_control_characters` names the variables holding a control character (what
  goes into livekit.yaml carries none: a newline or escape there reaches LiveKit).
- `cnt_redis_url` builds `redis://` / `rediss://` URLs with the user name and password
  percent-encoded in full (Jinja's urlencode leaves `/` alone, which breaks the URL).
- `cnt_mask_secrets` masks the secrets in a rendered file so `--diff` can show it. A
  diff of a file that holds secrets shows its old content too, which may hold a secret
  the inventory no longer knows (a rotated token, a removed key): masking the known
  values alone would print it. So values are masked by what they are (every known
  secret and every value of the backend environment, in every form the files write
  them: as is, percent-, JSON- and .env-encoded, and line by line when they span lines)
  and by where they stand: in a .env file every value, whatever its key, but the few
  keys the caller names as plain; in YAML, values under secret-looking keys and
  LiveKit's whole `keys:` block (quoted keys too); URL passwords anywhere. A mask
  carries a keyed fingerprint: the same value masks the same within one run, so a diff
  still shows that a secret changed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus, unquote

from ansible.errors import AnsibleFilterError

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The exact pattern python-dotenv interpolates (dotenv/variables.py, _posix_variable).
DOTENV_INTERPOLATION = re.compile(r"\$\{[^\}:]*(?::-[^\}]*)?\}")


def _value_problem(key: object, value: object) -> str | None:
    """Why `value` cannot be written for `key`, or None when it can."""
    if not isinstance(key, str) or not ENV_NAME.match(key):
        return f"{key!r} is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)"
    if not isinstance(value, str):
        # A number reaches Docker's API as a number (refused there) and YAML rewrites it
        # on the way (0800 -> 800, 1.10 -> 1.1): only strings are written as they stand.
        return f"{key}: the value must be a string, not {type(value).__name__} (quote it in YAML to keep it as written)"
    text = value
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


def _quote(value: str) -> str:
    # Single quotes: python-dotenv decodes only \\ and \' inside them.
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def cnt_dotenv(entries: object) -> str:
    """Render `entries` as .env lines (KEY='value'), refusing what cannot round-trip."""
    problems = cnt_dotenv_problems(entries)
    if problems:
        raise AnsibleFilterError("cannot write the .env file: " + "; ".join(problems))
    assert isinstance(entries, Mapping)
    return "".join(f"{key}={_quote(value)}\n" for key, value in entries.items())


# C0 controls (tab and newline included) and DEL: LiveKit's YAML values and host names
# carry none.
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def cnt_control_characters(variables: object) -> list[str]:
    """The names in `variables` (a mapping of variable names to values) whose value, or
    any string nested in it (keys too), holds a control character."""

    def bad(value: object) -> bool:
        if isinstance(value, str):
            return bool(CONTROL.search(value))
        if isinstance(value, Mapping):
            return any(bad(k) or bad(v) for k, v in value.items())
        if isinstance(value, list | tuple):
            return any(bad(v) for v in value)
        return False

    if not isinstance(variables, Mapping):
        raise AnsibleFilterError("cnt_control_characters expects a mapping of variable names to values")
    return [name for name, value in variables.items() if bad(value)]


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


SECRET_NAME = re.compile(r"secret|pass|pwd|token|credential|private|auth|key|dsn|cert|salt|cookie", re.IGNORECASE)
DOTENV_LINE = re.compile(r"^(\s*(?:export\s+)?)([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
# A YAML mapping line: a plain key, or a double-quoted one (which may hold `:` and `#`).
YAML_LINE = re.compile(r'^(\s*(?:-\s+)?)("(?:[^"\\]|\\.)*"|[^\s:#"][^:#]*?)(\s*:\s+)(\S.*)$')
YAML_KEYS_BLOCK = re.compile(r"^(\s*)keys\s*:\s*$")
URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)([^\s@/]+)(@)")
MASK = "********"
# Shorter values would mask ordinary text wherever it stands; they are masked by position.
MIN_KNOWN = 6


def _mask(value: str, key: str) -> str:
    if not key:
        return MASK
    return f"{MASK}({hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()[:8]})"


def _encodings(secret: str) -> set[str]:
    """The forms a secret takes in the files this role writes."""
    return {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(secret)[1:-1],
        _quote(secret)[1:-1],
    }


def _forms(secret: str) -> set[str]:
    """Every substring that would give a secret (or one of its lines) away."""
    forms = _encodings(secret)
    for line in secret.splitlines():
        if len(line.strip()) >= MIN_KNOWN:
            forms |= _encodings(line.strip())
    return {form for form in forms if len(form) >= MIN_KNOWN}


def _plain(value: str) -> str:
    """A value as written in a .env line (single quotes), YAML (JSON string) or a URL,
    decoded back to the secret itself."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("\\'", "'").replace("\\\\", "\\")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return str(json.loads(value))
        except ValueError:
            return value[1:-1]
    return unquote(value)


def _open_quote(value: str) -> bool:
    """Whether a .env value opens a single quote it does not close on its line."""
    if not value.startswith("'"):
        return False
    body = re.sub(r"\\.", "", value[1:])
    return "'" not in body


def cnt_mask_secrets(text: object, secrets: Iterable[object] = (), key: str = "", plain: Iterable[str] = ()) -> str:
    """`text` with every secret replaced by a mask (see the module's docstring).

    `secrets`: the values to mask wherever they stand; `plain`: the .env keys whose
    values may show (every other .env value is masked); `key`: this run's mask key."""
    plain_keys = set(plain)
    found: list[str] = []

    def mask(value: str) -> str:
        if value.startswith(MASK):
            return value
        found.append(_plain(value))
        return _mask(value, key)

    def replace_known(text: str, values: Iterable[str]) -> str:
        forms: dict[str, str] = {}
        for secret in sorted(values):
            for form in _forms(secret):
                forms.setdefault(form, _mask(secret, key))
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, forms[form])
        return text

    known = {str(s) for s in secrets if s is not None and not isinstance(s, bool) and str(s)}
    # Known values first, whole (a multi-line value as one), then by position.
    masked = replace_known(str(text or ""), known)
    lines = []
    keys_indent: int | None = None
    source = masked.splitlines(keepends=True)
    index = 0
    while index < len(source):
        line = source[index]
        index += 1
        body = line.rstrip("\r\n")
        ending = line[len(body) :]
        indent = len(body) - len(body.lstrip())
        if keys_indent is not None and body.strip() and indent <= keys_indent:
            keys_indent = None
        if match := YAML_KEYS_BLOCK.match(body):
            keys_indent = len(match.group(1))
        elif keys_indent is not None and (match := YAML_LINE.match(body)):
            # LiveKit's `keys:` maps API keys to their secrets.
            body = match.group(1) + match.group(2) + match.group(3) + mask(match.group(4))
        elif match := DOTENV_LINE.match(body):
            value = match.group(3)
            # A value spanning lines: up to the line that closes its quote, masked whole.
            while index < len(source) and _open_quote(value):
                value += "\n" + source[index].rstrip("\r\n")
                ending = source[index][len(source[index].rstrip("\r\n")) :]
                index += 1
            if match.group(2) not in plain_keys:
                body = match.group(1) + match.group(2) + "=" + mask(value)
            else:
                body = match.group(1) + match.group(2) + "=" + value
        elif (match := YAML_LINE.match(body)) and SECRET_NAME.search(match.group(2)):
            body = match.group(1) + match.group(2) + match.group(3) + mask(match.group(4))
        body = URL_PASSWORD.sub(lambda m: m.group(1) + mask(m.group(2)) + m.group(3), body)
        lines.append(body + ending)
    # The values found by position (an old secret the inventory no longer knows),
    # wherever else they stand.
    return replace_known("".join(lines), {v for v in found if v and not v.startswith(MASK)})


class FilterModule:
    """Ansible entry point."""

    def filters(self):
        return {
            "cnt_dotenv": cnt_dotenv,
            "cnt_dotenv_problems": cnt_dotenv_problems,
            "cnt_redis_url": cnt_redis_url,
            "cnt_mask_secrets": cnt_mask_secrets,
            "cnt_control_characters": cnt_control_characters,
        }
