"""cnt-scale-in (roles/cnt_pull/files), the service that drains an Auto Scaling instance
before its group terminates it: the order of its steps, against recording fakes of Auto
Scaling, ELB and Docker. (The Molecule `bootstrap` scenario runs it for real on an
instance, against the AWS test doubles and the LiveKit test double's drain.)"""

from __future__ import annotations

import http.server
import importlib.machinery
import importlib.util
import json
import os
import socketserver
import threading
import time
from pathlib import Path
from typing import ClassVar

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTANCE = "i-0123456789abcdef0"
GROUP = "cnt-production-app"
TARGET_GROUP = "arn:aws:elasticloadbalancing:eu-west-2:123456789012:targetgroup/cnt-production-backend/0123"


@pytest.fixture(scope="module")
def scale_in():
    path = str(ROOT / "roles/cnt_pull/files/cnt-scale-in")
    loader = importlib.machinery.SourceFileLoader("cnt_scale_in", path)
    spec = importlib.util.spec_from_loader("cnt_scale_in", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.lock = threading.Lock()

    def add(self, event: str) -> None:
        with self.lock:
            self.events.append(event)


class AutoScaling:
    def __init__(self, record: Recorder, fail_completions: int = 0) -> None:
        self.record = record
        self.fail_completions = fail_completions

    def describe_auto_scaling_instances(self, InstanceIds):
        return {
            "AutoScalingInstances": [
                {"InstanceId": InstanceIds[0], "AutoScalingGroupName": GROUP, "LifecycleState": "Terminating:Wait"}
            ]
        }

    def describe_auto_scaling_groups(self, AutoScalingGroupNames):
        return {"AutoScalingGroups": [{"AutoScalingGroupName": GROUP, "TargetGroupARNs": [TARGET_GROUP]}]}

    def record_lifecycle_action_heartbeat(self, **action):
        assert action == {"AutoScalingGroupName": GROUP, "LifecycleHookName": "cnt-terminate", "InstanceId": INSTANCE}
        self.record.add("heartbeat")

    def complete_lifecycle_action(self, **action):
        if self.fail_completions:
            self.fail_completions -= 1
            raise RuntimeError("Throttling")
        self.record.add(f"complete {action['LifecycleHookName']} {action['LifecycleActionResult']}")


class Waiter:
    def __init__(self, record: Recorder) -> None:
        self.record = record

    def wait(self, **kwargs):
        assert kwargs["Targets"] == [{"Id": INSTANCE}]
        time.sleep(0.2)
        self.record.add("drained by the target group")


class ELB:
    def __init__(self, record: Recorder) -> None:
        self.record = record

    def deregister_targets(self, TargetGroupArn, Targets):
        assert (TargetGroupArn, Targets) == (TARGET_GROUP, [{"Id": INSTANCE}])
        self.record.add("deregister")

    def get_waiter(self, name):
        assert name == "target_deregistered"
        return Waiter(self.record)


SETTINGS = {
    "heartbeat": 0.1,
    "lb_timeout": 30,
    "drain": ["cnt-livekit-server", "cnt-voice-agent"],
    "last": ["cnt-backend"],
    "retry_delay": 0,
}


def run(scale_in, record: Recorder, autoscaling: AutoScaling) -> None:
    def stop(name: str) -> str:
        record.add(f"stop {name} begins")
        # LiveKit drains its last room a while; the heartbeats go on meanwhile.
        time.sleep(0.5 if name == "cnt-livekit-server" else 0.05)
        record.add(f"stop {name} ends")
        return f"{name}: stopped"

    scale_in.drain(
        INSTANCE,
        "cnt-terminate",
        autoscaling,
        ELB(record),
        stop,
        lambda: record.add("pulls held"),
        SETTINGS,
    )


def test_it_leaves_the_target_group_drains_livekit_and_the_agent_then_the_backend_then_continues(scale_in) -> None:
    record = Recorder()
    run(scale_in, record, AutoScaling(record))
    events = record.events
    steps = [e for e in events if e != "heartbeat"]
    assert steps[:3] == ["pulls held", "deregister", "drained by the target group"]
    at = events.index
    # LiveKit and the agent stop side by side, after the target group drained the instance.
    assert at("stop cnt-voice-agent begins") < at("stop cnt-livekit-server ends")
    first_stop = min(at("stop cnt-livekit-server begins"), at("stop cnt-voice-agent begins"))
    assert at("drained by the target group") < first_stop
    # The backend only once both stopped; CONTINUE last, once.
    assert at("stop cnt-backend begins") > max(at("stop cnt-livekit-server ends"), at("stop cnt-voice-agent ends"))
    assert events[-1] == "complete cnt-terminate CONTINUE"
    assert events.count("complete cnt-terminate CONTINUE") == 1
    # Heartbeats from the start and while LiveKit drains; none after CONTINUE.
    assert events[0] == "heartbeat"
    during = events[at("stop cnt-livekit-server begins") : at("stop cnt-livekit-server ends")]
    assert during.count("heartbeat") >= 2


def test_a_refused_completion_is_tried_again(scale_in, capsys) -> None:
    record = Recorder()
    run(scale_in, record, AutoScaling(record, fail_completions=2))
    assert record.events[-1] == "complete cnt-terminate CONTINUE"
    assert "completing cnt-terminate failed (attempt 2 of 3): Throttling" in capsys.readouterr().out


class _Engine(http.server.BaseHTTPRequestHandler):
    """The two Docker Engine API calls cnt-scale-in makes, on a unix socket."""

    stopped: ClassVar[set[str]] = set()

    def address_string(self) -> str:
        return "docker.sock"

    def log_message(self, *args) -> None:
        pass

    def answer(self, status: int, body: dict | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        name = self.path.split("/")[2]
        if name == "absent":
            self.answer(404, {"message": "No such container"})
        elif name in self.stopped:
            self.answer(304)
        else:
            self.stopped.add(name)
            self.answer(204)

    def do_GET(self) -> None:
        name = self.path.split("/")[2]
        self.answer(200, {"State": {"Running": False, "ExitCode": 137 if name == "stubborn" else 0}})


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def test_containers_are_stopped_through_the_engine_api_with_their_own_timeout(scale_in, tmp_path) -> None:
    path = str(tmp_path / "docker.sock")
    server = _UnixServer(path, _Engine)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        docker = scale_in.Docker(path)
        assert docker.stop("cnt-livekit-server").startswith("cnt-livekit-server: stopped after ")
        assert docker.stop("cnt-livekit-server") == "cnt-livekit-server: was already stopped (exit 0)"
        assert docker.stop("stubborn").endswith("(killed at its stop timeout)")
        assert docker.stop("absent") == "absent: no such container"
    finally:
        server.shutdown()
        os.unlink(path)
