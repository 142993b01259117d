"""What each operation costs Redis in a deployment on Redis: commands (by name), bytes in and
out, and Redis CPU, per handshake, subscribe, first connect, published message, handoff and
disconnect, and per session and second while idle (the inputs of docs/capacity.md).

    .venv/bin/python benchmarks/redis_costs.py [--sessions 500] [--messages 200]

Two `python -m bayeux --redis` processes (A and B, each its own port) on one redis-server.
The session steps run --sessions times over long-polling (one request at a time, so that
nothing else runs meanwhile); then --sessions WebSocket clients (benchmarks/scale_load.py) hold
a connect on A, subscribed to /scale, and --messages are published through B at --rate. Redis's
INFO (commandstats, stats, cpu) is read before and after each step: the difference over the
count is the cost of one; the servers' CPU (both processes, from /proc) likewise, which counts
the HTTP requests of the step too. Commands run inside Lua scripts count as their own commands
(Redis counts them so) and the EVALSHA that ran them once more.
Bounded: every request has a timeout and the processes are stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bayeux.testing import free_port, stop_process, wait_for_port  # noqa: E402

CHANNEL = "/cost/news"
HANDSHAKE = {
    "channel": "/meta/handshake",
    "version": "1.0",
    "supportedConnectionTypes": ["long-polling"],
}
TIMEOUT_0 = {"timeout": 0}


def post(url: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(messages).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        replies: list[dict[str, Any]] = json.loads(answer.read())
        return replies


def info(client: redis.Redis) -> dict[str, Any]:
    found: dict[str, Any] = client.info("all")
    return found


TICKS = 100  # /proc's clock ticks a second (os.sysconf("SC_CLK_TCK") on Linux)


def cpu_of(pids: list[int]) -> float:
    """CPU seconds the server processes have used."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


def delta(before: dict[str, Any], after: dict[str, Any], count: int) -> dict[str, Any]:
    """What one operation cost: commands by name, bytes, CPU microseconds (over `count`)."""
    calls: dict[str, float] = {}
    for key, value in after.items():
        if key.startswith("cmdstat_"):
            was = before.get(key, {}).get("calls", 0)
            if value["calls"] > was:
                calls[key.removeprefix("cmdstat_")] = (value["calls"] - was) / count
    calls.pop("info", None)
    cpu = (after["used_cpu_sys"] + after["used_cpu_user"]) - (
        before["used_cpu_sys"] + before["used_cpu_user"]
    )
    return {
        "commands": round(sum(calls.values()), 2),
        "by_command": {k: round(v, 2) for k, v in sorted(calls.items(), key=lambda kv: -kv[1])},
        "bytes_in": round(
            (after["total_net_input_bytes"] - before["total_net_input_bytes"]) / count
        ),
        "bytes_out": round(
            (after["total_net_output_bytes"] - before["total_net_output_bytes"]) / count
        ),
        "redis_cpu_us": round(cpu / count * 1e6, 1),
        "used_memory_delta": round((after["used_memory"] - before["used_memory"]) / count),
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    redis_port = free_port()
    redis_process = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(redis_port),
         "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    servers: list[subprocess.Popen[bytes]] = []
    try:
        wait_for_port(redis_port, redis_process)
        urls = []
        for _ in range(2):
            port = free_port()
            process = subprocess.Popen(
                [sys.executable, "-m", "bayeux", "--port", str(port), "--log-level", "error",
                 "--redis", f"redis://127.0.0.1:{redis_port}/0", "--timeout", "30000",
                 "--max-interval", "60000", "--max-sessions-per-browser", "-1",
                 "--max-handshakes-per-address", "-1"],
                cwd=ROOT,
            )  # fmt: skip
            wait_for_port(port, process)
            servers.append(process)
            urls.append(f"http://127.0.0.1:{port}/cometd")
        a, b = urls
        time.sleep(1.0)
        client = redis.Redis(port=redis_port)
        figures: dict[str, Any] = {"sessions": args.sessions, "messages": args.messages}
        n = args.sessions

        pids = [p.pid for p in servers]

        def step(name: str, run: Any, count: int) -> None:
            before, cpu = info(client), cpu_of(pids)
            run()
            time.sleep(0.6)  # the next periodic save has written what the step changed
            figures[name] = delta(before, info(client), count)
            figures[name]["servers_cpu_us"] = round((cpu_of(pids) - cpu) / count * 1e6)
            print(f"{name:<22} {json.dumps(figures[name])}", flush=True)

        # Two idle stretches first: what the processes cost Redis with no session at all.
        step("idle process, 1 s", lambda: time.sleep(5.0), 5 * 2)
        ids: list[str] = []

        def handshakes() -> None:
            for _ in range(n):
                reply = post(a, [HANDSHAKE])
                ids.append(reply[0]["clientId"])

        step("handshake", handshakes, n)

        def subscribes() -> None:
            for cid in ids:
                post(a, [{"channel": "/meta/subscribe", "clientId": cid, "subscription": CHANNEL}])

        step("subscribe", subscribes, n)

        def connects(url: str) -> Any:
            def run() -> None:
                for cid in ids:
                    connect = {"channel": "/meta/connect", "clientId": cid}
                    post(url, [{**connect, "connectionType": "long-polling", "advice": TIMEOUT_0}])

            return run

        step("first connect", connects(a), n)
        step("connect (same process)", connects(a), n)
        # A handoff moves a session that kept up: little to read again from the log.
        step("handoff (connect on B)", connects(b), n)

        def disconnects() -> None:
            for cid in ids:
                post(b, [{"channel": "/meta/disconnect", "clientId": cid}])

        step("disconnect", disconnects, n)

        # Subscribers that keep up: WebSockets with a connect held (benchmarks/scale_load.py),
        # on A; the messages are published through B.
        load = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "scale_load.py"), "--transport",
             "websocket", "--count", str(n), "--subnet", "1", "--port", a.split(":")[2][:-7],
             "--deadline", "600"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert load.stdin is not None and load.stdout is not None
            load.stdout.readline()  # hello
            before, cpu = info(client), cpu_of(pids)
            load.stdin.write('{"cmd": "connect"}\n')
            load.stdin.flush()
            connected = json.loads(load.stdout.readline())
            assert connected["ready"] == n, connected
            time.sleep(0.6)
            figures["websocket client setup"] = delta(before, info(client), n)
            figures["websocket client setup"]["servers_cpu_us"] = round(
                (cpu_of(pids) - cpu) / n * 1e6
            )
            print(f"{'websocket client setup':<22} {json.dumps(figures['websocket client setup'])}")
            publisher = post(b, [HANDSHAKE])[0]["clientId"]

            def publishes() -> None:
                started = time.monotonic()
                for i in range(args.messages):
                    time.sleep(max(0.0, started + i / args.rate - time.monotonic()))
                    post(b, [{"channel": "/scale", "clientId": publisher,
                              "data": {"seq": 1, "text": "x" * args.payload}}])  # fmt: skip

            step(f"publish ({n} subscribers, {args.rate:g}/s)", publishes, args.messages)
            step("idle websocket client, 1 s", lambda: time.sleep(5.0), 5 * n)
        finally:
            if load.stdin is not None:
                load.stdin.write('{"cmd": "quit"}\n')
                load.stdin.flush()
            load.wait(30)
        memory = info(client)
        figures["redis_used_memory_after"] = memory["used_memory"]
        client.close()
        return figures
    finally:
        for process in servers:
            stop_process(process)
        stop_process(redis_process)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--payload", type=int, default=100, help="bytes of text a message")
    parser.add_argument("--rate", type=float, default=20.0, help="messages published a second")
    args = parser.parse_args()
    print(json.dumps(measure(args)))


if __name__ == "__main__":
    main()
