"""Hostile values: what a secret or an operator's setting may hold."""

from __future__ import annotations

from typing import Any

import yaml

# Values that must reach the backend (and livekit.yaml) exactly as written.
ROUND_TRIP = {
    "SPACES": "with spaces inside",
    "EDGE_SPACES": "  leading and trailing  ",
    "HASH": "hash # not a comment",
    "HASH_FIRST": "#starts-with-hash",
    "DOLLAR": "dollar $HOME and $ alone and ${ unclosed",
    "SINGLE_QUOTE": "it's",
    "DOUBLE_QUOTE": 'say "hi"',
    "BOTH_QUOTES": "'single' and \"double\"",
    "EQUALS": "a=b==c",
    "BACKSLASHES": "back\\slash \\n is not a newline, \\\\ two, \\' quote",
    "TRAILING_BACKSLASH": "ends with \\",
    "UNICODE": "h\u00e9llo \u2013 日本語 \u2013 \U0001f389",
    "EMPTY": "",
    "NEWLINE": "first line\nsecond line",
    "TAB": "tab\there",
    "JINJA": "{{ not a template }} {% nor this %}",
    "YAML_WORDS": "yes",
    "YAML_NULL": "~",
    "YAML_OCTAL": "0o17",
    "YAML_FLOAT": "1e3",
    "YAML_INDICATORS": ": - [ ] { } * & ! % @ ` | > ? ,",
    "URL_SPECIALS": "p@ss/w:rd?#&^<>",
}

# Values no .env file can carry for python-dotenv, and why (part of the message).
REFUSED = {
    "INTERPOLATED": ("${HOME}", "python-dotenv would expand"),
    "INTERPOLATED_DEFAULT": ("${X:-fallback}", "python-dotenv would expand"),
    "CARRIAGE_RETURN": ("a\rb", "carriage return"),
    "NUL": ("a\0b", "NUL"),
}


class Unsafe(str):
    """A string Ansible must take as written: never templated, never re-typed."""


def _unsafe(dumper: yaml.SafeDumper, data: Unsafe) -> Any:
    # Only strings that look like templates get the !unsafe tag: ansible-core 2.19
    # re-resolves tagged scalars, so `!unsafe "yes"` would come back as a boolean.
    if "{" in data:
        return dumper.represent_scalar("!unsafe", str(data), style='"')
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(data), style='"')


class UnsafeDumper(yaml.SafeDumper):
    """Dumps every string so that Ansible reads it back as the same string."""


UnsafeDumper.add_representer(Unsafe, _unsafe)


def unsafe(value: Any) -> Any:
    """Mark every string inside `value` to be taken as written."""
    if isinstance(value, str):
        return Unsafe(value)
    if isinstance(value, dict):
        return {k: unsafe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unsafe(v) for v in value]
    return value


def dump_unsafe(data: Any) -> str:
    return yaml.dump(unsafe(data), Dumper=UnsafeDumper, allow_unicode=True, sort_keys=False)
