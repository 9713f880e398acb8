"""The verification probe reads LiveKit's `nodes` hash: protobuf livekit.Node values
(livekit_internal.proto: id = 1, ip = 2, num_cpus = 3, stats = 4 {started_at = 1,
updated_at = 2}, type = 5, state = 6, region = 7). Encoded here by hand, independently."""

from __future__ import annotations

import importlib.util

from conftest import ROOT

spec = importlib.util.spec_from_file_location("probe", ROOT / "roles" / "cnt_verify" / "files" / "probe.py")
probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(probe)


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, value: int | bytes | str) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def test_decodes_id_ip_and_the_stats_refresh_time():
    stats = field(1, 1_790_000_000) + field(2, 1_795_000_123)
    node = (
        field(1, "ND_a1b2c3") + field(2, "10.0.1.23") + field(3, 2) + field(4, stats) + field(6, 1) + field(7, "euw2")
    )
    assert probe.decode_node(node) == {"id": "ND_a1b2c3", "ip": "10.0.1.23", "updated_at": 1_795_000_123}


def test_a_node_without_stats_is_never_fresh():
    assert probe.decode_node(field(1, "ND_x") + field(2, "10.0.0.9"))["updated_at"] == 0
