#!/usr/bin/python
"""Read HAProxy's server states and counters from its admin socket (`show stat`).

community.general.haproxy changes a server's state but returns none: this module reads
them, changing nothing (so it runs in check mode too). The tests read HAProxy with the
same function (`show_stat`), which needs nothing but the standard library.
"""

from __future__ import annotations

import csv
import socket

DOCUMENTATION = r"""
module: cnt_haproxy_stat
short_description: Read HAProxy's server states through its admin socket
description:
  - Sends C(show stat) to HAProxy's admin socket and returns one row per proxy and server.
  - Changes nothing; supports check mode.
options:
  socket:
    description: The admin socket's path.
    type: path
    default: /run/haproxy/admin.sock
  backends:
    description: Only the rows of these backends (all when empty).
    type: list
    elements: str
    default: []
author: cnt-deploy
"""

EXAMPLES = r"""
- name: Read HAProxy's server states
  cnt_haproxy_stat:
    backends: [cnt_backend]
  register: __stat
"""

RETURN = r"""
rows:
  description: One dict per line of C(show stat) (pxname, svname, status, wretr, econ, hrsp_5xx, ...).
  returned: always
  type: list
  elements: dict
"""


def show_stat(path: str = "/run/haproxy/admin.sock", backends: list[str] | tuple[str, ...] = ()) -> list[dict]:
    """`show stat` as a list of rows ({column: value}), only `backends`' when given."""
    connection = socket.socket(socket.AF_UNIX)
    try:
        connection.settimeout(10)
        connection.connect(path)
        connection.sendall(b"show stat\n")
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    finally:
        connection.close()
    rows = csv.DictReader(data.decode().lstrip("# ").splitlines())
    return [dict(row) for row in rows if not backends or row.get("pxname") in backends]


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(
        argument_spec={
            "socket": {"type": "path", "default": "/run/haproxy/admin.sock"},
            "backends": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    try:
        rows = show_stat(module.params["socket"], module.params["backends"])
    except OSError as error:
        module.fail_json(msg=f"cannot read HAProxy's admin socket {module.params['socket']}: {error}")
    module.exit_json(changed=False, rows=rows)


if __name__ == "__main__":
    main()
