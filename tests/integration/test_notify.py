"""cnt_notify against a local receiver: the message (Slack's "text", the structured
fields under "cnt"); a webhook that is unreachable, or answers an error, warns and the run
goes on. The URL is a secret: no -vvv output holds it, or its token."""

from __future__ import annotations

import importlib.util
import socket

import pytest
from conftest import ROOT

_spec = importlib.util.spec_from_file_location("webhook_receiver", ROOT / "tests/webhook_receiver.py")
webhook_receiver = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(webhook_receiver)
_spec = importlib.util.spec_from_file_location("secret_scan", ROOT / "tests/secret_scan.py")
secret_scan = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(secret_scan)

TOKEN = "secret-webhook-token-2718"


@pytest.fixture
def notify(ansible_playbook):
    def run(url: str, event: str = "success"):
        args = ("-vvv", "-i", "localhost,", "-c", "local", "tests/integration/notify.yml")
        result = ansible_playbook(*args, "-e", f"url={url}", "-e", f"event={event}")
        output = result.stdout + result.stderr
        assert secret_scan.leaks(output, [url, TOKEN]) == [], "the webhook's URL was printed"
        return result

    return run


def test_the_receiver_gets_the_text_and_the_structured_fields(notify):
    with webhook_receiver.receiver() as got:
        result = notify(got.url, "failure")
    assert result.returncode == 0, result.stdout[-3000:]
    assert got.received == [
        {
            "text": "Deploy run-1 of v9 to test: failure",
            "cnt": {
                "event": "failure",
                "run": "run-1",
                "environment": "test",
                "version": "v9",
                "hosts": ["app-1", "app-2"],
                "result": "failure",
            },
        }
    ]
    assert "WARNING" not in result.stdout


def test_an_unreachable_webhook_warns_and_the_run_goes_on(notify):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Nothing listens on the port now.
    result = notify(f"http://127.0.0.1:{port}/hooks/T0001/B0001/{TOKEN}")
    assert result.returncode == 0, result.stdout[-3000:]
    flat = " ".join(result.stdout.split())
    assert "WARNING: the success notification was not delivered to cnt_notify_webhook_url: no answer" in flat
    assert "the run went on" in flat


def test_a_webhook_answering_an_error_warns_and_the_run_goes_on(notify):
    with webhook_receiver.receiver() as got:
        got.status = 500
        result = notify(got.url, "start")
    assert result.returncode == 0, result.stdout[-3000:]
    assert got.events() == ["start"]
    flat = " ".join(result.stdout.split())
    assert "WARNING: the start notification was not delivered to cnt_notify_webhook_url: HTTP 500" in flat


def test_no_url_sends_nothing(notify):
    result = notify("")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "WARNING" not in result.stdout and "the run went on" in result.stdout
