"""Many clients on one machine: N Bayeux clients held at once, one broadcast to all of them, then
a steady rate, against bayeux (one process, or --workers on Redis) or a peer.

    .venv/bin/python benchmarks/scale.py --clients 18000
    .venv/bin/python benchmarks/scale.py --clients 100000 --workers 6 --redis
    .venv/bin/python benchmarks/scale.py --clients 100000 --workers 6 --redis \
        --transport long-polling
    .venv/bin/python benchmarks/scale.py --server faye-redis --workers 6 --clients 100000
    .venv/bin/python benchmarks/scale.py --server cometd-nodejs --transport long-polling \
        --clients 18000

It starts redis-server (--redis, faye-redis) and the server itself, then load-generator processes
(benchmarks/scale_load.py: asyncio on uvloop with raw sockets, up to --per-generator clients
each, under the open-file limit), from loopback source addresses (127.0.G.2, 127.0.G.3, ...
for generator G, --per-address clients each) so that neither ephemeral ports nor the
server's per-address memory bound (--max-address-bytes) is the limit. Every client
handshakes, subscribes to /scale and holds a /meta/connect: on its WebSocket, or as a parked
long-poll.

Reported, in this order, then as one JSON object on the last line:
- setup: the time to connect, handshake and subscribe all N;
- memory: the resident memory of every server process and Redis, before the clients and
  after; KiB per client is the difference over N (kib_per_client), and the whole over N too;
- idle: CPU per second of the deployment with N clients doing nothing (held connects
  renewed at each --timeout, WebSocket pings);
- one broadcast: a message published through the server (a long-polling publisher of its
  own), the time until each of the N has it (p50, p99, max), and the longest event-loop stall
  in any server process meanwhile (benchmarks/stallprobe.py, installed with --app for bayeux
  and `node --require` for the peers: the server has no probe of its own);
- with $BAYEUX_TURN_MS set (stallprobe.py): the loop turns that used more CPU than that during
  the broadcast, what ran in each and the stacks sampled in it;
- steady: one message a second for --steady seconds, delivery latency and the deployment's
  CPU per delivery (all of it, and above the idle rate);
- what limited each phase: the CPU of the servers, Redis, the load generators and the rest of
  the machine (other work on it) against its cores.

Bounded: every phase has its own timeout and the run stops after --deadline seconds; the load
generators exit on their own after it too.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import servers  # noqa: E402

from bayeux.testing import child_pids, free_port, stop_process, wait_for_port  # noqa: E402

SERVERS = ("bayeux", "faye-redis", "faye", "cometd-nodejs")
TICKS = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1
CHANNEL = "/scale"


def log(text: str) -> None:
    print(text, flush=True)


# --------------------------------------------------------------------------- processes


class Deployment:
    """The server processes (and Redis) of one run, their URLs, CPU and memory."""

    def __init__(self, args: argparse.Namespace, stall_dir: Path) -> None:
        self.args = args
        self.stall_dir = stall_dir
        self.redis: subprocess.Popen | None = None
        self.redis_port = 0
        self.processes: list[subprocess.Popen] = []
        self.ports: list[int] = []
        self.server_pids: list[int] = []

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "BAYEUX_STALL_DIR": str(self.stall_dir),
        }

    def start(self) -> None:
        args = self.args
        if args.redis or args.server == "faye-redis":
            self.redis_port = free_port()
            self.redis = subprocess.Popen(
                [shutil.which("redis-server") or "redis-server", "--port", str(self.redis_port),
                 "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--maxclients", "10000"],
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            wait_for_port(self.redis_port, self.redis)
        timeout_ms = args.timeout
        if args.server == "bayeux":
            port = free_port()
            command = [
                sys.executable, "-m", "bayeux", "--port", str(port),
                "--timeout", str(timeout_ms), *servers.BAYEUX_LOAD_OPTIONS,
                "--max-connections", str(args.max_connections),
                "--max-sessions", str(max(100_000, args.clients + 1000)),
                "--app", "benchmarks.stallprobe:install", *args.bayeux_option,
            ]  # fmt: skip
            if args.workers > 1:
                command += ["--workers", str(args.workers)]
            if args.redis:
                command += ["--redis", f"redis://127.0.0.1:{self.redis_port}/0"]
            process = subprocess.Popen(
                command, cwd=ROOT, env=self.env(), stdout=subprocess.DEVNULL, stderr=self._log()
            )
            wait_for_port(port, process, timeout=60)
            self.processes.append(process)
            self.ports.append(port)
            if args.workers > 1:
                deadline = time.monotonic() + 60
                while len(child_pids(process.pid)) < args.workers:
                    if time.monotonic() > deadline:
                        raise SystemExit("the workers did not all start")
                    time.sleep(0.1)
                time.sleep(2.0)  # each bound and its engine ready
            self.server_pids = [process.pid]
            return
        count = args.workers if args.server == "faye-redis" else 1
        for _ in range(count):
            port = free_port()
            peers = ROOT / "interop" / "peers"
            probe = ["--require", str(ROOT / "benchmarks" / "stallprobe.cjs")]
            if args.server == "faye-redis":
                command = ["node", *probe, str(peers / "faye_redis_server.cjs"), str(port),
                           str(timeout_ms // 1000), str(self.redis_port)]  # fmt: skip
            else:
                command = ["node", *probe, *servers.command(args.server, port,
                           timeout_ms=timeout_ms)[1:]]  # fmt: skip
            process = subprocess.Popen(
                command, cwd=ROOT, env=self.env(), stdout=subprocess.DEVNULL, stderr=self._log()
            )
            wait_for_port(port, process, timeout=30)
            self.processes.append(process)
            self.ports.append(port)
            self.server_pids.append(process.pid)

    def _log(self) -> Any:
        return open(self.stall_dir / "server.log", "ab")  # noqa: SIM115 (the child keeps it)

    def pids(self) -> list[int]:
        """Every server process (a --workers parent and its workers)."""
        found = []
        for pid in self.server_pids:
            found.extend(servers.family(pid))
        return found

    def workers(self) -> list[int]:
        """The processes that serve connections."""
        if self.args.server == "bayeux" and self.args.workers > 1:
            return child_pids(self.server_pids[0])
        return list(self.server_pids)

    def stop(self) -> None:
        for process in reversed(self.processes):
            stop_process(process, timeout=30)
        if self.redis is not None:
            stop_process(self.redis)


def redis_info(port: int) -> dict[str, Any]:
    """INFO of the deployment's redis-server: clients, memory, stats, commandstats."""
    import redis

    with redis.Redis(port=port, socket_timeout=10) as client:
        info: dict[str, Any] = client.info("all")
    return info


def redis_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Commands (by name), bytes in and out between two INFOs."""
    calls: dict[str, int] = {}
    for key, value in after.items():
        if key.startswith("cmdstat_"):
            name = key.removeprefix("cmdstat_")
            was = before.get(key, {}).get("calls", 0)
            if value["calls"] - was:
                calls[name] = value["calls"] - was
    return {
        "commands": sum(calls.values()),
        "by_command": dict(sorted(calls.items(), key=lambda kv: -kv[1])),
        "bytes_in": after["total_net_input_bytes"] - before["total_net_input_bytes"],
        "bytes_out": after["total_net_output_bytes"] - before["total_net_output_bytes"],
        "cpu_seconds": round(
            (after["used_cpu_sys"] + after["used_cpu_user"])
            - (before["used_cpu_sys"] + before["used_cpu_user"]),
            2,
        ),
    }


def proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def proc_rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def open_files(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def listen_overflows() -> int:
    """Connections the kernel dropped from full listen queues so far (every process)."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split(), values.split(), strict=False))["ListenOverflows"])
    return 0


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (every process, ours and others')."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / TICKS


class Snapshot:
    """CPU seconds used so far by each side, at one moment."""

    def __init__(self, deployment: Deployment, loads: list[subprocess.Popen]) -> None:
        self.wall = time.monotonic()
        self.per_server = {pid: proc_cpu(pid) for pid in deployment.pids()}
        self.server = sum(self.per_server.values())
        self.redis = proc_cpu(deployment.redis.pid) if deployment.redis is not None else 0.0
        self.per_load = [proc_cpu(p.pid) for p in loads]
        self.load = sum(self.per_load)
        self.machine = machine_busy()


def usage(before: Snapshot, after: Snapshot) -> dict[str, Any]:
    """Cores used by each side between two snapshots, and what limited that phase."""
    wall = max(after.wall - before.wall, 1e-6)
    server = (after.server - before.server) / wall
    redis = (after.redis - before.redis) / wall
    load = (after.load - before.load) / wall
    machine = (after.machine - before.machine) / wall
    others = max(0.0, machine - server - redis - load)
    busiest_server = max(
        ((after.per_server.get(pid, 0) - cpu) / wall for pid, cpu in before.per_server.items()),
        default=0.0,
    )
    busiest_load = max(
        ((a - b) / wall for a, b in zip(after.per_load, before.per_load, strict=False)),
        default=0.0,
    )
    sides = {"server": server, "redis": redis, "load generators": load, "other work": others}
    if machine >= 0.85 * CORES:
        top = max(sides, key=lambda k: sides[k])
        limit = f"the machine's {CORES} cores (most to {top})"
    elif busiest_server >= 0.85:
        limit = "one server process at a full core"
    elif redis >= 0.85:
        limit = "redis-server at a full core"
    elif busiest_load >= 0.85:
        limit = "one load generator at a full core"
    else:
        limit = "no CPU limit (latency, timers or the clients' pace)"
    return {
        "seconds": round(wall, 2),
        "cores_server": round(server, 2),
        "cores_redis": round(redis, 2),
        "cores_load": round(load, 2),
        "cores_other": round(others, 2),
        "busiest_server_process": round(busiest_server, 2),
        "busiest_load_process": round(busiest_load, 2),
        "limit": limit,
    }


# ----------------------------------------------------------------------- load generators


class Loads:
    """The load-generator processes and their command lines."""

    def __init__(self, args: argparse.Namespace, ports: list[int]) -> None:
        self.args = args
        count = max(1, math.ceil(args.clients / args.per_generator))
        shares = [
            args.clients // count + (1 if i < args.clients % count else 0) for i in range(count)
        ]
        self.processes: list[subprocess.Popen] = []
        for index, share in enumerate(shares):
            command = [
                sys.executable, str(ROOT / "benchmarks" / "scale_load.py"),
                "--transport", args.transport, "--count", str(share),
                "--subnet", str(index + 1), "--per-address", str(args.per_address),
                "--path", "/cometd",
                "--concurrency", str(args.concurrency),
                "--setup-timeout", str(args.setup_timeout), "--deadline", str(args.deadline),
            ]  # fmt: skip
            for port in ports:
                command += ["--port", str(port)]
            self.processes.append(
                subprocess.Popen(
                    command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
                )
            )
        for process in self.processes:
            hello = self.read(process)
            assert hello["event"] == "hello", hello

    def read(self, process: subprocess.Popen) -> dict:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise SystemExit(f"load generator {process.pid} exited ({process.poll()})")
        return json.loads(line)

    def tell(self, process: subprocess.Popen, command: dict) -> None:
        assert process.stdin is not None
        process.stdin.write(json.dumps(command) + "\n")
        process.stdin.flush()

    def ask(self, command: dict) -> list[dict]:
        for process in self.processes:
            self.tell(process, command)
        return [self.read(process) for process in self.processes]

    def stop(self) -> None:
        for process in self.processes:
            try:
                self.tell(process, {"cmd": "quit"})
            except (BrokenPipeError, OSError):
                pass
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


# ---------------------------------------------------------------------------- publisher


def bayeux_post(
    connection: http.client.HTTPConnection, path: str, messages: list[dict]
) -> list[dict]:
    """One request on `connection`, with the browser cookie a server set before (kept on the
    connection: cometd-nodejs-server finds sessions by it)."""
    headers = {"Content-Type": "application/json"}
    cookie = getattr(connection, "bayeux_cookie", "")
    if cookie:
        headers["Cookie"] = cookie
    connection.request("POST", path, json.dumps(messages), headers=headers)
    answer = connection.getresponse()
    set_cookie = answer.getheader("Set-Cookie")
    if set_cookie:
        connection.bayeux_cookie = set_cookie.split(";", 1)[0]  # type: ignore[attr-defined]
    result: list[dict] = json.loads(answer.read())
    return result


def publish(url: str, seq: int, payload: int) -> float:
    """Publishes message `seq` on the benchmark channel from a session of its own, on one
    keep-alive connection (so one process of the deployment serves it all: a handshake a
    loaded process could not record in Redis in time is still its own); the time it was
    sent (time.time()). Tries three times."""
    parts = urllib.parse.urlsplit(url)
    problem = ""
    for _ in range(3):
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        try:
            handshake = bayeux_post(
                connection,
                parts.path,
                [{"channel": "/meta/handshake", "version": "1.0",
                  "supportedConnectionTypes": ["long-polling"]}],
            )  # fmt: skip
            client_id = handshake[0]["clientId"]
            sent = time.time()
            data = {"seq": seq, "t": sent, "pad": "x" * payload}
            message = {"channel": CHANNEL, "clientId": client_id, "data": data}
            replies = bayeux_post(connection, parts.path, [message])
            if any(r.get("successful") for r in replies if r.get("channel") == CHANNEL):
                bayeux_post(
                    connection, parts.path, [{"channel": "/meta/disconnect", "clientId": client_id}]
                )
                return sent
            problem = f"publish refused: {replies}"
        except (OSError, KeyError, ValueError) as exc:
            problem = f"publish failed: {exc}"
        finally:
            connection.close()
        time.sleep(1.0)
    raise RuntimeError(problem)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(p * (len(values) - 1) + 0.5))]


def collect(loads: Loads, seq: int, expected: int, timeout: float) -> list[float]:
    """Arrival times of message `seq` at every client, once all `expected` have it or after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = loads.ask({"cmd": "count", "seq": seq})
        if sum(c["n"] for c in counts) >= expected:
            break
        time.sleep(0.05)
    arrivals: list[float] = []
    for answer in loads.ask({"cmd": "times", "seq": seq}):
        arrivals.extend(answer["times"])
    return arrivals


def longest_stall(
    stall_dir: Path, start: float, end: float
) -> tuple[float, float, dict[str, list[float]]]:
    """The longest loop stall any server process recorded in windows overlapping [start, end]
    (wall time a timer was late), the most CPU one ran without yielding, and each process's
    [stall, CPU, longest garbage collection, its CPU] (the Node peers record no collections:
    0)."""
    each: dict[str, list[float]] = {}
    for path in stall_dir.glob("*.json"):
        if not path.stem.isdigit():
            continue  # a census
        try:
            windows = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        # A window [s, s + 0.1) overlaps; a stall ending in it is recorded by its wake.
        inside = [w for w in windows if start - 0.1 <= w[0] <= end + 0.1]
        if inside:
            each[path.stem] = [
                max(w[i] if len(w) > i else 0.0 for w in inside) for i in (1, 2, 3, 4)
            ]
    late = max((v[0] for v in each.values()), default=float("nan"))
    busy = max((v[1] for v in each.values()), default=float("nan"))
    return late, busy, each


def slow_turns(stall_dir: Path, start: float, end: float, count: int = 5) -> list[dict]:
    """The loop turns that used the most CPU in [start, end] in any server process, with what
    ran in them (stallprobe's <pid>.turns.json: only with $BAYEUX_TURN_MS set)."""
    found = []
    for path in stall_dir.glob("*.turns.json"):
        try:
            turns = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for turn in turns:
            if start - 0.1 <= turn["at"] <= end + 0.1:
                found.append({"pid": int(path.name.split(".")[0]), **turn})
    return sorted(found, key=lambda t: -t["cpu_ms"])[:count]


def log_turns(turns: list[dict]) -> list[dict]:
    for turn in turns:
        log(
            f"  slow turn in {turn['pid']}: {turn['cpu_ms']} ms of CPU ({turn['wall_ms']} ms),"
            f" {turn['callbacks']} callbacks, the longest {turn['what']}"
        )
        for stack, n in turn["stacks"][:6]:
            log(f"    {n:4d} {stack[-700:]}")
    return turns


# ---------------------------------------------------------------------------------- run


def take_census(deployment: Deployment, stall_dir: Path) -> list[dict]:
    """Each worker's census of tracked objects (stallprobe.census, asked with SIGUSR2)."""
    pids = deployment.workers()
    for pid in pids:
        os.kill(pid, signal.SIGUSR2)
    found = []
    deadline = time.monotonic() + 60
    for pid in pids:
        path = stall_dir / f"{pid}.census.json"
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        if path.exists():
            time.sleep(0.2)
            record = json.loads(path.read_text())
            found.append(record)
            log(
                f"census of {pid}: {record['tracked']} tracked objects, a full collection"
                f" {record['full_collection_ms']} ms; commonest {record['types'][:25]}"
            )
    return found


def rss_all(deployment: Deployment) -> tuple[int, int]:
    servers_kib = sum(proc_rss_kib(pid) for pid in deployment.pids())
    redis_kib = proc_rss_kib(deployment.redis.pid) if deployment.redis is not None else 0
    return servers_kib, redis_kib


def run(args: argparse.Namespace) -> dict[str, Any]:
    stall_dir = Path(tempfile.mkdtemp(prefix="bayeux-scale-"))
    deployment = Deployment(args, stall_dir)
    figures: dict[str, Any] = {
        "server": args.server,
        "transport": args.transport,
        "workers": args.workers,
        "redis": bool(args.redis or args.server == "faye-redis"),
        "target_clients": args.clients,
        "open_file_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[1],
    }
    loads: Loads | None = None
    started = time.monotonic()
    try:
        deployment.start()
        url = f"http://127.0.0.1:{deployment.ports[0]}/cometd"
        time.sleep(1.0)
        base_servers, base_redis = rss_all(deployment)
        log(
            f"{args.server}: {len(deployment.pids())} server processes on ports"
            f" {deployment.ports}, {base_servers / 1024:.0f} MiB; redis {base_redis / 1024:.0f} MiB"
        )
        loads = Loads(args, deployment.ports)
        log(f"{len(loads.processes)} load generators, up to {args.per_generator} clients each")

        # ---- setup
        on_redis = deployment.redis is not None
        info_before = redis_info(deployment.redis_port) if on_redis else {}
        before = Snapshot(deployment, loads.processes)
        overflows = listen_overflows()
        answers = loads.ask({"cmd": "connect"})
        after = Snapshot(deployment, loads.processes)
        figures["setup_listen_overflows"] = listen_overflows() - overflows
        if on_redis:
            info_after = redis_info(deployment.redis_port)
            figures["redis_setup"] = redis_delta(info_before, info_after)
            figures["redis_clients_after_setup"] = info_after["connected_clients"]
            clients = info_after["connected_clients"]
            log(f"  redis during setup: {figures['redis_setup']}, {clients} clients")
        ready = sum(a["ready"] for a in answers)
        failures: dict[str, int] = {}
        for a in answers:
            for why, n in a["failures"].items():
                failures[why] = failures.get(why, 0) + n
        setup = max(a["seconds"] for a in answers)
        figures["setup_seconds"] = round(setup, 1)
        figures["setup_usage"] = usage(before, after)
        figures["setup_failures"] = failures
        log(
            f"setup: {ready}/{args.clients} ready in {setup:.1f} s; failures {failures};"
            f" listen queue overflows {figures['setup_listen_overflows']}"
        )
        log(f"  {figures['setup_usage']}")

        # ---- memory
        time.sleep(args.settle)
        stats = loads.ask({"cmd": "stats"})
        ready = sum(s["ready"] for s in stats)
        figures["clients"] = ready
        now_servers, now_redis = rss_all(deployment)
        grown = (now_servers + now_redis) - (base_servers + base_redis)
        figures["rss_mib_servers"] = round(now_servers / 1024, 1)
        figures["rss_mib_redis"] = round(now_redis / 1024, 1)
        if on_redis:
            memory = redis_info(deployment.redis_port)
            figures["redis_used_memory_mib"] = round(memory["used_memory"] / 2**20, 1)
            figures["redis_keys"] = memory.get("db0", {}).get("keys", 0)
        figures["kib_per_client"] = round(grown / max(ready, 1), 2)
        figures["kib_per_client_total"] = round((now_servers + now_redis) / max(ready, 1), 2)
        figures["load_rss_mib"] = round(sum(s["maxrss_kib"] for s in stats) / 1024, 1)
        figures["open_files_per_worker"] = [open_files(pid) for pid in deployment.workers()]
        if args.census and args.server == "bayeux":
            figures["census"] = take_census(deployment, stall_dir)
        log(
            f"memory: servers {now_servers / 1024:.0f} MiB, redis {now_redis / 1024:.0f} MiB;"
            f" {figures['kib_per_client']} KiB per client grown"
            f" ({figures['kib_per_client_total']} KiB total / client); open files per worker"
            f" {figures['open_files_per_worker']}"
        )

        # ---- idle
        info_before = redis_info(deployment.redis_port) if on_redis else {}
        before = Snapshot(deployment, loads.processes)
        time.sleep(args.idle)
        after = Snapshot(deployment, loads.processes)
        if on_redis:
            figures["redis_idle"] = redis_delta(info_before, redis_info(deployment.redis_port))
            log(f"  redis while idle: {figures['redis_idle']}")
        idle = usage(before, after)
        idle_cpu = idle["cores_server"] + idle["cores_redis"]
        figures["idle_usage"] = idle
        stall_idle, busy_idle, _ = longest_stall(stall_dir, time.time() - args.idle, time.time())
        figures["idle_max_loop_stall_ms"] = stall_idle
        figures["idle_max_loop_busy_ms"] = busy_idle
        log(f"idle: {idle}; longest stall {stall_idle} ms ({busy_idle} ms of CPU)")
        figures["idle_slow_turns"] = log_turns(
            slow_turns(stall_dir, time.time() - args.idle, time.time(), 3)
        )

        # ---- one broadcast
        info_before = redis_info(deployment.redis_port) if on_redis else {}
        before = Snapshot(deployment, loads.processes)
        sent = publish(url, 1, args.payload)
        arrivals = collect(loads, 1, ready, args.broadcast_timeout)
        after = Snapshot(deployment, loads.processes)
        if on_redis:
            figures["redis_broadcast"] = redis_delta(info_before, redis_info(deployment.redis_port))
        latencies = sorted((t - sent) * 1000 for t in arrivals)
        last = max(arrivals, default=sent)
        time.sleep(1.3)  # the probes write every second
        stall, busy, each = longest_stall(stall_dir, sent, last)
        figures["delivered"] = len(latencies)
        figures["lost"] = ready - len(latencies)
        figures["broadcast_p50_ms"] = round(percentile(latencies, 0.5), 1)
        figures["broadcast_p99_ms"] = round(percentile(latencies, 0.99), 1)
        figures["broadcast_max_ms"] = round(latencies[-1], 1) if latencies else None
        figures["max_loop_stall_ms"] = stall
        figures["max_loop_busy_ms"] = busy
        figures["loop_stall_ms_per_process"] = each
        figures["broadcast_usage"] = usage(before, after)
        log(
            f"broadcast: {len(latencies)}/{ready} delivered, p50 {figures['broadcast_p50_ms']}"
            f" ms, p99 {figures['broadcast_p99_ms']} ms, max {figures['broadcast_max_ms']} ms;"
            f" longest loop stall {stall} ms, {busy} ms of it CPU (per process {each})"
        )
        log(f"  {figures['broadcast_usage']}")
        figures["broadcast_slow_turns"] = log_turns(slow_turns(stall_dir, sent, last))
        if on_redis:
            during = figures["redis_broadcast"]
            log(f"  redis during the broadcast (a publisher's handshake included): {during}")

        # ---- steady
        if args.steady > 0:
            time.sleep(2.0)
            before = Snapshot(deployment, loads.processes)
            stats_before = loads.ask({"cmd": "stats"})
            begin = time.monotonic()
            sends: dict[int, float] = {}
            for i in range(args.steady):
                due = begin + i
                time.sleep(max(0.0, due - time.monotonic()))
                sends[100 + i] = publish(url, 100 + i, args.payload)
            time.sleep(max(0.0, begin + args.steady - time.monotonic()))
            delivered = 0
            steady_latencies: list[float] = []
            for seq, at in sends.items():
                times = collect(loads, seq, ready, args.broadcast_timeout)
                delivered += len(times)
                steady_latencies.extend((t - at) * 1000 for t in times)
            after = Snapshot(deployment, loads.processes)
            stats_after = loads.ask({"cmd": "stats"})
            steady_latencies.sort()
            used = usage(before, after)
            cpu = (after.server - before.server) + (after.redis - before.redis)
            idle_share = idle_cpu * (after.wall - before.wall)
            figures["steady"] = {
                "messages": args.steady,
                "delivered": delivered,
                "expected": args.steady * ready,
                "p50_ms": round(percentile(steady_latencies, 0.5), 1),
                "p99_ms": round(percentile(steady_latencies, 0.99), 1),
                "cpu_us_per_delivery": round(cpu / max(delivered, 1) * 1e6, 2),
                "cpu_us_per_delivery_above_idle": round(
                    max(0.0, cpu - idle_share) / max(delivered, 1) * 1e6, 2
                ),
                "load_cpu_us_per_delivery": round(
                    (after.load - before.load) / max(delivered, 1) * 1e6, 2
                ),
                "connects_renewed": sum(s["connects"] for s in stats_after)
                - sum(s["connects"] for s in stats_before),
                "usage": used,
            }
            log(f"steady: {figures['steady']}")
        final = loads.ask({"cmd": "stats"})
        figures["rehandshakes"] = sum(s["rehandshakes"] for s in final)
        figures["closed_during_run"] = sum(s["closed"] for s in final)
        figures["ready_at_end"] = sum(s["ready"] for s in final)
    except Exception as exc:  # the figures so far, and why the run ended early
        figures["error"] = f"{type(exc).__name__}: {exc}"
        log(f"run ended early: {figures['error']}")
    finally:
        if loads is not None:
            loads.stop()
        deployment.stop()
        figures["run_seconds"] = round(time.monotonic() - started, 1)
        log_text = (
            (stall_dir / "server.log").read_text(errors="replace")
            if (stall_dir / "server.log").exists()
            else ""
        )
        errors = [line for line in log_text.splitlines() if "ERROR" in line or "Traceback" in line]
        figures["server_errors"] = len(errors)
        if args.keep_log:
            Path(args.keep_log).write_text(log_text)
        if errors:
            log("server errors (first 5):\n  " + "\n  ".join(errors[:5]))
        shutil.rmtree(stall_dir, ignore_errors=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--server", choices=SERVERS, default="bayeux")
    parser.add_argument("--clients", type=int, default=18000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--transport", choices=("websocket", "long-polling"), default="websocket")
    parser.add_argument(
        "--redis", action="store_true", help="bayeux on Redis (--workers > 1 needs it)"
    )
    parser.add_argument("--timeout", type=int, default=30000, help="ms a connect is held")
    parser.add_argument("--payload", type=int, default=100, help="bytes of padding a message")
    parser.add_argument("--per-generator", type=int, default=16000)
    parser.add_argument(
        "--per-address", type=int, default=1000,
        help="clients per loopback source address (bayeux bounds an address's memory)",
    )  # fmt: skip
    parser.add_argument(
        "--concurrency", type=int, default=200, help="setups in flight per generator"
    )
    parser.add_argument("--max-connections", type=int, default=19500, help="bayeux's, per process")
    parser.add_argument("--settle", type=float, default=5.0, help="s after setup before memory")
    parser.add_argument("--idle", type=float, default=10.0, help="s of idle CPU measured")
    parser.add_argument("--steady", type=int, default=10, help="messages at one a second")
    parser.add_argument(
        "--census", action="store_true",
        help="bayeux: each worker's tracked objects by type once the clients are in",
    )  # fmt: skip
    parser.add_argument("--keep-log", metavar="PATH", help="where to keep the servers' log")
    parser.add_argument("--broadcast-timeout", type=float, default=30.0)
    parser.add_argument("--setup-timeout", type=float, default=600.0)
    parser.add_argument("--deadline", type=float, default=1800.0, help="s the whole run may take")
    parser.add_argument(
        "--bayeux-option", action="append", default=[],
        help="an option for bayeux's command line (repeat for more),"
        " e.g. --bayeux-option=--no-ws-compression",
    )  # fmt: skip
    args = parser.parse_args()
    if args.server == "bayeux" and args.workers > 1 and not args.redis:
        parser.error("--workers above 1 needs --redis")
    if args.server == "cometd-nodejs" and args.transport != "long-polling":
        parser.error("cometd-nodejs-server serves long-polling only")
    if args.per_generator + 100 > resource.getrlimit(resource.RLIMIT_NOFILE)[1]:
        parser.error("--per-generator must stay under the open-file limit")

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"--deadline {args.deadline} s passed")

    signal.signal(signal.SIGALRM, expire)
    signal.alarm(int(args.deadline) + 60)
    log(
        f"scale: {args.clients} {args.transport} clients on {args.server}, {args.workers}"
        f" process(es){' on redis' if args.redis else ''}; python {sys.version.split()[0]},"
        f" {CORES} cores, open-file limit {resource.getrlimit(resource.RLIMIT_NOFILE)[1]}"
    )
    figures = run(args)
    signal.alarm(0)
    print(json.dumps(figures, default=str), flush=True)


if __name__ == "__main__":
    main()
