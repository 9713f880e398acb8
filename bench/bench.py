"""make bench: what a deploy costs on the local fleet of `make demo`, measured in one run.

  noop_deploy_s / floor_s   deploy.yml on the converged fleet, against a playbook doing
                            only what any run must (facts and one stat per host)
  status_s / status_ratio   status.yml on the same fleet, and its ratio to the floor
  change_deploy_s           deploy.yml changing one backend value on every host (serial 1)
  noop_deploy_<N>_s         the same no-op on a fleet of N application hosts (--hosts N,
  noop_scale                default 4), and its ratio to the two-host no-op; floor_scale,
                            the same ratio of the floor (the machine's own growth)
  rolling_*                 HTTP through HAProxy and Socket.IO clients during a rolling
                            redeploy (demo-1 -> demo-2; then back, not measured)
  socketio_*                10,000 events through Redis to clients on both instances:
                            delivery latency on the sender's instance and on the other
  bootstrap_s               bare host to healthy through the user data and ansible-pull
                            (the Molecule bootstrap scenario's healthy host, alone)

Writes reports/bench.json and reports/bench.md. Benchmarks, not tests: nothing here
fails on a number; docs/benchmarks.md reads the goals against them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
import socketio

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "reports"
LB = "http://127.0.0.1:8080"
INSTANCES = {"cnt-demo-app-1": "http://172.30.57.11:8000", "cnt-demo-app-2": "http://172.30.57.12:8000"}
EVENTS = 10_000
GOALS = {
    "noop_ratio": ("<=", 3),
    "noop_scale": ("<=", 1.25),
    "noop_changed": ("==", 0),
    "status_ratio": ("<=", 2),
    "rolling_failed": ("==", 0),
    "rolling_requests": (">=", 1000),
    "socketio_lost": ("==", 0),
    "socketio_cross_p99_ms": ("<=", 10),
    "bootstrap_s": ("<=", 60),
}


def playbook(
    *args: str, env: dict[str, str] | None = None, inventories: tuple[str, ...] = ("inventories/local",)
) -> tuple[float, subprocess.CompletedProcess]:
    started = time.monotonic()
    run = subprocess.run(
        ["ansible-playbook", *(arg for inventory in inventories for arg in ("-i", inventory)), *args],
        cwd=ROOT,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    if run.returncode != 0:
        sys.exit(f"ansible-playbook {' '.join(args)} failed:\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}")
    return elapsed, run


def changed(run: subprocess.CompletedProcess) -> int:
    recap = run.stdout.split("PLAY RECAP")[-1]
    return sum(int(n) for n in re.findall(r"changed=(\d+)", recap))


# --- no-op deploy against the floor
def noop() -> dict:
    # Each twice, alternating, the faster of each counts: these machines are shared.
    floors, noops, statuses = [], [], []
    for _ in range(2):
        floors.append(playbook("bench/floor.yml")[0])
        noop_s, run = playbook("playbooks/deploy.yml", "-e", "cnt_app_version=demo-1")
        noops.append(noop_s)
        statuses.append(playbook("playbooks/status.yml")[0])
    floor_s, noop_s, status_s = min(floors), min(noops), min(statuses)
    return {
        "noop_deploy_s": round(noop_s, 1),
        "floor_s": round(floor_s, 1),
        "noop_ratio": round(noop_s / floor_s, 2),
        "noop_changed": changed(run),
        "status_s": round(status_s, 1),
        "status_ratio": round(status_s / floor_s, 2),
    }


# --- one backend value changed on every host
def change() -> dict:
    env = {"APP_ENV": "local", "SECRET_KEY": "{{ vault_cnt_backend_secret_key }}", "BENCH_CHANGE": "1"}
    changed_vars = json.dumps({"cnt_app_version": "demo-1", "cnt_backend_env": env})
    change_s, _ = playbook("playbooks/deploy.yml", "-e", changed_vars)
    playbook("playbooks/deploy.yml", "-e", "cnt_app_version=demo-1")  # back (not measured)
    return {"change_deploy_s": round(change_s, 1)}


# --- the no-op on a larger fleet: its time must not grow with the hosts
def scale(hosts: int, noop_2_s: float | None, floor_2_s: float | None) -> dict:
    """Add application hosts cnt-demo-app-3.. to the demo fleet (an extra inventory beside
    inventories/local), deploy them, time the no-op and the floor on all of them, then
    remove the extra hosts again."""
    extra = [f"cnt-demo-app-{i}" for i in range(3, hosts + 1)]
    inventory = REPORTS / f"bench-{hosts}-hosts.yml"
    REPORTS.mkdir(exist_ok=True)
    inventory.write_text(
        json.dumps(
            {"demo_machines": {"children": {"app_servers": {"hosts": {
                # The demo's state directory (images handed over): inventories/local
                # derives it from the inventory's directory, which is reports/ here.
                name: {"cnt_demo_ip": f"172.30.57.{10 + i}", "cnt_demo_state_dir": str(ROOT / ".demo")}
                for i, name in enumerate(extra, start=3)
            }}}}}
        )
    )  # fmt: skip
    both = ("inventories/local", str(inventory))
    try:
        playbook("demo/up.yml", inventories=both, env={"CNT_DEMO_VERSIONS": "demo-1,demo-2"})
        playbook("playbooks/deploy.yml", "-e", "cnt_app_version=demo-1", inventories=both)
        floors, noops = [], []
        for _ in range(2):
            floors.append(playbook("bench/floor.yml", inventories=both)[0])
            noops.append(playbook("playbooks/deploy.yml", "-e", "cnt_app_version=demo-1", inventories=both)[0])
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", *extra], capture_output=True, check=False)
        playbook("demo/services.yml", "--limit", "load_balancers:localhost")  # HAProxy: two hosts again
    noop_s, floor_s = min(noops), min(floors)
    return {
        f"noop_deploy_{hosts}_s": round(noop_s, 1),
        f"floor_{hosts}_s": round(floor_s, 1),
        "noop_scale": round(noop_s / noop_2_s, 2) if noop_2_s else None,
        # How Ansible's own floor grows on the same machine: here the controller and every
        # host share the same cores, so even the floor grows with the hosts.
        "floor_scale": round(floor_s / floor_2_s, 2) if floor_2_s else None,
    }


# --- rolling redeploy under load
class Load:
    def __init__(self, clients: int = 6) -> None:
        self.stop = threading.Event()
        self.requests = 0
        self.failed = 0
        self.gaps: list[float] = []
        self.clients = clients
        self.threads = [threading.Thread(target=self.http, daemon=True) for _ in range(2)]
        self.threads.append(threading.Thread(target=lambda: asyncio.run(self.sockets()), daemon=True))

    def http(self) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            try:
                session.get(f"{LB}/version", timeout=5).raise_for_status()
            except Exception:
                self.failed += 1
            self.requests += 1
            time.sleep(0.01)

    async def sockets(self) -> None:
        async def hold() -> None:
            client = socketio.AsyncClient(reconnection=True, reconnection_delay=0.5, reconnection_delay_max=2)
            lost_at: list[float] = []

            @client.event
            async def connect() -> None:
                if lost_at:
                    self.gaps.append(time.monotonic() - lost_at.pop())

            @client.event
            async def disconnect(*_args) -> None:
                lost_at[:] = [time.monotonic()]

            await client.connect(LB, transports=["websocket"], wait_timeout=10)
            while not self.stop.is_set():
                await asyncio.sleep(0.2)
            await client.disconnect()

        await asyncio.gather(*(hold() for _ in range(self.clients)))


def rolling() -> dict:
    load = Load()
    for thread in load.threads:
        thread.start()
    time.sleep(3)
    deploy_s, _ = playbook("playbooks/deploy.yml", "-e", "cnt_app_version=demo-2")
    time.sleep(5)
    load.stop.set()
    for thread in load.threads:
        thread.join(timeout=30)
    playbook("playbooks/deploy.yml", "-e", "cnt_app_version=demo-1")  # back to the demo's version
    return {
        "rolling_deploy_s": round(deploy_s, 1),
        "rolling_requests": load.requests,
        "rolling_failed": load.failed,
        "socketio_reconnect_max_s": round(max(load.gaps), 2) if load.gaps else None,
    }


# --- Socket.IO events across instances, through Redis
def receive(queue: multiprocessing.Queue, ready: multiprocessing.Event, done: multiprocessing.Event) -> None:
    """One client per instance; records (instance, seq, latency) for every event."""

    async def main() -> None:
        latencies: dict[str, list[float]] = {name: [] for name in INSTANCES}
        clients = []
        for name, url in INSTANCES.items():
            client = socketio.AsyncClient()

            def handler(message, name=name) -> None:
                data = message.get("data") or {}
                if data.get("bench"):
                    latencies[name].append((time.time() - data["t"]) * 1000)

            client.on("broadcast", handler)
            await client.connect(url, transports=["websocket"], wait_timeout=10)
            clients.append(client)
        ready.set()
        while not done.is_set():
            await asyncio.sleep(0.1)
        await asyncio.sleep(0)
        for client in clients:
            await client.disconnect()
        queue.put(latencies)

    asyncio.run(main())


def send(sender_url: str, count: int, rate: int) -> int:
    async def main() -> int:
        client = socketio.AsyncClient()
        await client.connect(sender_url, transports=["websocket"], wait_timeout=10)
        interval = 1 / rate
        start = time.monotonic()
        for seq in range(count):
            await client.emit("broadcast", {"bench": True, "seq": seq, "t": time.time()})
            delay = start + (seq + 1) * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await asyncio.sleep(1)
        await client.disconnect()
        return count

    return asyncio.run(main())


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))], 2) if ordered else float("nan")


def settle(limit_s: float = 180) -> float:
    """Wait (at most limit_s) until the machine is no longer busy with what ran before
    (a deploy's restarts: the voice agents' start-up costs seconds of CPU), so the events
    measure delivery through Redis, not a CPU queue. Returns the 1-minute load then."""
    deadline = time.monotonic() + limit_s
    while os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1) and time.monotonic() < deadline:
        time.sleep(5)
    return round(os.getloadavg()[0], 2)


def events(rate: int) -> dict:
    load_before = settle()
    queue: multiprocessing.Queue = multiprocessing.Queue()
    ready, done = multiprocessing.Event(), multiprocessing.Event()
    receiver = multiprocessing.Process(target=receive, args=(queue, ready, done))
    receiver.start()
    ready.wait(30)
    sender_instance, sender_url = next(iter(INSTANCES.items()))
    sent = send(sender_url, EVENTS, rate)
    time.sleep(5)  # stragglers
    done.set()
    latencies = queue.get(timeout=60)
    receiver.join(timeout=30)
    same = latencies[sender_instance]
    cross = [v for name, values in latencies.items() if name != sender_instance for v in values]
    return {
        "socketio_sent": sent,
        "socketio_rate_per_s": rate,
        "socketio_lost": 2 * sent - len(same) - len(cross),
        "socketio_cross_p50_ms": percentile(cross, 50),
        "socketio_cross_p99_ms": percentile(cross, 99),
        "socketio_same_p50_ms": percentile(same, 50),
        "socketio_same_p99_ms": percentile(same, 99),
        "socketio_cross_mean_ms": round(statistics.fmean(cross), 2) if cross else None,
        "socketio_load_before": load_before,
    }


# --- bootstrap: the Molecule scenario's healthy host alone
def bootstrap() -> dict:
    def molecule(*args: str) -> None:
        subprocess.run(["molecule", *args], cwd=ROOT, check=True, capture_output=True, text=True)

    try:
        molecule("destroy", "-s", "bootstrap")
        molecule("create", "-s", "bootstrap")
        molecule("prepare", "-s", "bootstrap")
        molecule("converge", "-s", "bootstrap", "--", "--limit", "bootstrap-app")
        # Molecule's scenario directory (named by a hash of the project path): the newest.
        outcome = max(
            Path.home().glob(".ansible/tmp/molecule.*.bootstrap/bootstrap-bootstrap-app.json"),
            key=lambda p: p.stat().st_mtime,
        )
        result = json.loads(outcome.read_text())
        if result["rc"] != 0:
            sys.exit("bootstrap failed:\n" + "\n".join(result["output"]))
        # Where the time went: the user data's steps, and ansible-pull's slowest tasks
        # (profile_tasks, on the first run only).
        done = next((line for line in result["output"] if line.startswith("cnt-bootstrap: done")), "")
        slowest = [line.strip() for line in result["output"] if re.search(r"-{3,} +[0-9.]+s$", line)]
        return {
            "bootstrap_s": result["seconds"],
            "bootstrap_steps": done.split("s: ", 1)[1] if "s: " in done else "",
            "bootstrap_slowest": slowest,
        }
    finally:
        subprocess.run(["molecule", "cleanup", "-s", "bootstrap"], cwd=ROOT, capture_output=True, check=False)
        subprocess.run(["molecule", "destroy", "-s", "bootstrap"], cwd=ROOT, capture_output=True, check=False)


def table(results: dict) -> str:
    lines = ["| metric | value | goal | met |", "| --- | --- | --- | --- |"]
    for key, value in results.items():
        if key.startswith("_"):
            continue
        goal = GOALS.get(key)
        met = ""
        if goal and isinstance(value, (int, float)):
            op, target = goal
            met = "yes" if {"<=": value <= target, ">=": value >= target, "==": value == target}[op] else "**no**"
        lines.append(f"| `{key}` | {value} | {' '.join(map(str, goal)) if goal else ''} | {met} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    steps_names = ["noop", "change", "events", "saturation", "rolling", "bootstrap", "scale"]
    parser.add_argument("--skip", nargs="*", default=[], choices=steps_names)
    # 200/s: what these shared 2-core machines deliver without queueing, with the fleet,
    # Redis and both clients on them (500/s queues: p99 in the hundreds of ms, on the
    # sender's instance as on the other); the saturation run shows it.
    parser.add_argument("--rate", type=int, default=200, help="Socket.IO events per second (default 200)")
    parser.add_argument("--saturation", type=int, default=500, help="a second run at this rate (0 = none)")
    parser.add_argument("--hosts", type=int, default=4, help="fleet size of the scale no-op (default 4; 2 = none)")
    args = parser.parse_args()
    results: dict = {"_when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "_cpus": os.cpu_count()}
    # Events on the converged fleet, before the rolling deploy restarts everything.
    steps = {"noop": noop, "change": change, "events": lambda: events(args.rate)}
    if args.saturation:
        steps["saturation"] = lambda: {
            f"saturation_{k.removeprefix('socketio_')}": v for k, v in events(args.saturation).items()
        }
    steps |= {"rolling": rolling, "bootstrap": bootstrap}
    if args.hosts > 2:
        steps["scale"] = lambda: scale(args.hosts, results.get("noop_deploy_s"), results.get("floor_s"))
    for name, step in steps.items():
        if name in args.skip:
            continue
        print(f"bench: {name} ...", flush=True)
        results.update(step())
        print(json.dumps(results, indent=2), flush=True)
        # After every step: a later step failing keeps what this run measured.
        REPORTS.mkdir(exist_ok=True)
        (REPORTS / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
        (REPORTS / "bench.md").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()
