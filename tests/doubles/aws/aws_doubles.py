"""TEST DOUBLES for what an Auto Scaling instance talks to in AWS, for the Molecule
`bootstrap` scenario. Tests and nothing else use it; no traffic goes to AWS or to the
real instance-metadata address.

One process, two ports on the address given (the scenario network's gateway):
  --moto-port  moto in server mode: EC2 (tags, Auto Scaling groups), SSM Parameter Store,
               Secrets Manager. The instances' AWS_ENDPOINT_URL.
  --port       this module's own HTTP server:
     /latest/...           instance metadata, IMDSv2 (a PUT for a token, then GETs with
                           it), answered per caller: the instance whose address is the
                           caller's in --instances (a JSON file, read on each request:
                           {"172.30.59.11": {"instance-id": ..., "local-ipv4": ...}}).
                           It also serves instance-role credentials, as IMDS does, and
                           autoscaling/target-lifecycle-state (InService until a test
                           sets another: Auto Scaling's side of a scale-in).
     POST /                Auto Scaling's CompleteLifecycleAction and
                           RecordLifecycleActionHeartbeat (moto 5.2.5 implements neither):
                           checked against moto (the group exists, the instance is in it,
                           the hook is its hook for the transition the instance is in:
                           terminating once its target state is Terminated, launching
                           before) and recorded; an action completed once takes no
                           second completion nor heartbeat, as AWS refuses them.
                           Any other Auto Scaling action is forwarded to moto.
                           The instances' AWS_ENDPOINT_URL_AUTO_SCALING.
     /_doubles/lifecycle   the recorded completions (JSON), for the tests.
     /_doubles/heartbeats  the recorded heartbeats (JSON).
     POST /_doubles/target-lifecycle-state  {"instance": ID, "state": "Terminated"}: what
                           the instance's metadata says Auto Scaling is taking it to.
     /_doubles/imds        the metadata paths each caller asked for (JSON).
     POST /_doubles/webhook/...  a chat's incoming webhook (cnt_notify_webhook_url): each
                           JSON body recorded with its caller, answered 200.
     /_doubles/webhooks    the recorded bodies (JSON).
     /static/...           files under --static (the git repository, wheels). With
                           --git-token, the repository (*.git/...) answers only to HTTP
                           basic auth with that token as the password (a private
                           repository, as a git host serves it); the attempts are counted
                           at /_doubles/git-auth.
"""

from __future__ import annotations

import argparse
import base64
import functools
import http.server
import json
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

XMLNS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"


class Doubles:
    def __init__(self, moto_url: str, instances: Path) -> None:
        self.moto_url = moto_url
        self.instances = instances
        self.tokens: set[str] = set()
        self.lifecycle: list[dict] = []
        self.heartbeats: list[dict] = []
        self.target_states: dict[str, str] = {}
        self.git_auth = {"accepted": 0, "refused": 0}
        self.imds_log: dict[str, list[str]] = {}
        self.webhooks: list[dict] = []
        self.lock = threading.Lock()

    def instance(self, address: str) -> dict | None:
        try:
            return json.loads(self.instances.read_text()).get(address)
        except (OSError, ValueError):
            return None

    def autoscaling(self, region: str):
        return boto3.client(
            "autoscaling",
            endpoint_url=self.moto_url,
            region_name=region,
            aws_access_key_id="doubles",
            aws_secret_access_key="doubles",
        )


class Handler(http.server.SimpleHTTPRequestHandler):
    doubles: Doubles
    git_token: str = ""

    def log_message(self, format: str, *args) -> None:
        print(f"{self.client_address[0]} {format % args}", flush=True)

    def reply(self, status: int, body: str | bytes, content_type: str = "text/plain") -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    # --- instance metadata (IMDSv2)
    def do_PUT(self) -> None:
        if self.path != "/latest/api/token" or "X-aws-ec2-metadata-token-ttl-seconds" not in self.headers:
            self.reply(400, "bad token request")
            return
        token = secrets.token_urlsafe(24)
        with self.doubles.lock:
            self.doubles.tokens.add(token)
        self.reply(200, token)

    def metadata(self) -> None:
        address = self.client_address[0]
        with self.doubles.lock:
            self.doubles.imds_log.setdefault(address, []).append(self.path)
            valid = self.headers.get("X-aws-ec2-metadata-token") in self.doubles.tokens
        if not valid:
            self.reply(401, "IMDSv2: a session token is required")
            return
        instance = self.doubles.instance(address)
        if instance is None:
            self.reply(404, f"no instance at {address}")
            return
        path = self.path.removeprefix("/latest/meta-data/").rstrip("/")
        role = instance.get("role", "cnt-app-instance")
        values = {
            "instance-id": instance["instance-id"],
            "local-ipv4": instance["local-ipv4"],
            "placement/region": instance["region"],
            "placement/availability-zone": instance["region"] + "a",
            "iam/security-credentials": role,
            f"iam/security-credentials/{role}": json.dumps(
                {
                    "Code": "Success",
                    "Type": "AWS-HMAC",
                    "AccessKeyId": "ASIADOUBLE" + instance["instance-id"][-6:].upper(),
                    "SecretAccessKey": "test-double-secret",
                    "Token": "test-double-session-token",
                    "Expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600)),
                    "LastUpdated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
            ),
        }
        with self.doubles.lock:
            values["autoscaling/target-lifecycle-state"] = self.doubles.target_states.get(
                instance["instance-id"], "InService"
            )
        if "public-ipv4" in instance:
            values["public-ipv4"] = instance["public-ipv4"]
        if path not in values:
            self.reply(404, "not found")
            return
        self.reply(200, values[path])

    def do_GET(self) -> None:
        if self.path.startswith("/latest/meta-data"):
            self.metadata()
        elif self.path == "/_doubles/lifecycle":
            with self.doubles.lock:
                self.reply(200, json.dumps(self.doubles.lifecycle), "application/json")
        elif self.path == "/_doubles/heartbeats":
            with self.doubles.lock:
                self.reply(200, json.dumps(self.doubles.heartbeats), "application/json")
        elif self.path == "/_doubles/git-auth":
            with self.doubles.lock:
                self.reply(200, json.dumps(self.doubles.git_auth), "application/json")
        elif self.path == "/_doubles/imds":
            with self.doubles.lock:
                self.reply(200, json.dumps(self.doubles.imds_log), "application/json")
        elif self.path == "/_doubles/webhooks":
            with self.doubles.lock:
                self.reply(200, json.dumps(self.doubles.webhooks), "application/json")
        else:
            self.static(super().do_GET)

    def do_HEAD(self) -> None:
        self.static(super().do_HEAD)

    def static(self, serve) -> None:
        """Files under --static, at /static/...; nothing else."""
        if not self.path.startswith("/static/"):
            self.reply(404, "not found")
            return
        if self.git_token and ".git/" in self.path:
            expected = "Basic " + base64.b64encode(f"x-access-token:{self.git_token}".encode()).decode()
            given = self.headers.get("Authorization")
            with self.doubles.lock:
                self.doubles.git_auth["refused" if given != expected else "accepted"] += 1
            if given != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="cnt-deploy"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        self.path = self.path.removeprefix("/static")
        serve()

    # --- Auto Scaling's lifecycle actions (AWS query protocol); the tests' controls
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if self.path.startswith("/_doubles/webhook/"):
            with self.doubles.lock:
                self.doubles.webhooks.append(
                    {"time": time.time(), "caller": self.client_address[0], "body": json.loads(body)}
                )
            self.reply(200, "ok")
            return
        if self.path == "/_doubles/target-lifecycle-state":
            wanted = json.loads(body)
            with self.doubles.lock:
                self.doubles.target_states[wanted["instance"]] = wanted["state"]
            self.reply(200, json.dumps(wanted), "application/json")
            return
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}
        action = form.get("Action")
        if action not in ("CompleteLifecycleAction", "RecordLifecycleActionHeartbeat"):
            self.forward(body)
            return
        region = self.region()
        record = {
            "time": time.time(),
            "caller": self.client_address[0],
            "region": region,
            "group": form.get("AutoScalingGroupName"),
            "hook": form.get("LifecycleHookName"),
            "instance": form.get("InstanceId"),
        }
        if action == "CompleteLifecycleAction":
            record["result"] = form.get("LifecycleActionResult")
        problem = self.check(record, region)
        record["accepted"] = problem is None
        record["problem"] = problem
        with self.doubles.lock:
            (self.doubles.lifecycle if action == "CompleteLifecycleAction" else self.doubles.heartbeats).append(record)
        if problem:
            self.error("ValidationError", problem)
            return
        self.reply(
            200,
            f'<{action}Response xmlns="{XMLNS}"><{action}Result/>'
            f"<ResponseMetadata><RequestId>{secrets.token_hex(8)}</RequestId></ResponseMetadata>"
            f"</{action}Response>",
            "text/xml",
        )

    def forward(self, body: bytes) -> None:
        """Any other Auto Scaling action (DescribeAutoScalingInstances...) goes to moto as sent."""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        request = urllib.request.Request(self.doubles.moto_url + "/", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                self.reply(answer.status, answer.read(), answer.headers.get("Content-Type", "text/xml"))
        except urllib.error.HTTPError as error:
            self.reply(error.code, error.read(), error.headers.get("Content-Type", "text/xml"))

    def region(self) -> str:
        # From the request's signature: Credential=KEY/DATE/REGION/autoscaling/aws4_request
        auth = self.headers.get("Authorization", "")
        try:
            return auth.split("Credential=")[1].split("/")[2]
        except IndexError:
            return "us-east-1"

    def check(self, record: dict, region: str) -> str | None:
        if "result" in record and record["result"] not in ("CONTINUE", "ABANDON"):
            return f"LifecycleActionResult must be CONTINUE or ABANDON, not {record['result']}"
        client = self.doubles.autoscaling(region)
        groups = client.describe_auto_scaling_groups(AutoScalingGroupNames=[record["group"] or ""])["AutoScalingGroups"]
        if not groups:
            return f"no Auto Scaling group {record['group']}"
        if record["instance"] not in [i["InstanceId"] for i in groups[0]["Instances"]]:
            return f"instance {record['instance']} is not in group {record['group']}"
        with self.doubles.lock:
            terminating = self.doubles.target_states.get(record["instance"]) == "Terminated"
        transition = "autoscaling:EC2_INSTANCE_" + ("TERMINATING" if terminating else "LAUNCHING")
        hooks = client.describe_lifecycle_hooks(AutoScalingGroupName=record["group"])["LifecycleHooks"]
        if record["hook"] not in [h["LifecycleHookName"] for h in hooks if h["LifecycleTransition"] == transition]:
            return f"no {transition} lifecycle hook {record['hook']} on group {record['group']}"
        with self.doubles.lock:
            done = [
                r
                for r in self.doubles.lifecycle
                if r["instance"] == record["instance"] and r["hook"] == record["hook"] and r["accepted"]
            ]
        if done:
            return f"No active Lifecycle Action found with instance ID {record['instance']}"
        return None

    def error(self, code: str, message: str) -> None:
        self.reply(
            400,
            f'<ErrorResponse xmlns="{XMLNS}"><Error><Type>Sender</Type><Code>{code}</Code>'
            f"<Message>{message}</Message></Error><RequestId>{secrets.token_hex(8)}</RequestId></ErrorResponse>",
            "text/xml",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--moto-port", type=int, required=True)
    parser.add_argument("--instances", type=Path, required=True)
    parser.add_argument("--static", type=Path, required=True)
    parser.add_argument("--git-token", default="", help="serve the repository only to this token (basic auth)")
    args = parser.parse_args()

    moto = ThreadedMotoServer(ip_address=args.bind, port=args.moto_port, verbose=False)
    moto.start()
    Handler.doubles = Doubles(f"http://{args.bind}:{args.moto_port}", args.instances)
    Handler.git_token = args.git_token
    handler = functools.partial(Handler, directory=str(args.static))
    server = http.server.ThreadingHTTPServer((args.bind, args.port), handler)
    print(
        f"aws doubles: moto on {args.bind}:{args.moto_port}, metadata/lifecycle/static on {args.bind}:{args.port}",
        flush=True,
    )
    server.serve_forever()


if __name__ == "__main__":
    main()
