"""Time from a push to the last stream client holding the new revision, against two references.

N stream clients spread over several processes (asyncio, one connection each) hold
streams to a real `ringfence serve` on loopback. The policy is one stage at 100%, so
the push itself assigns every instance (nothing waits for a controller tick). We
record when each client receives its update and report p50 / p99 / max of (receipt -
push sent), and the server's memory per idle connection. In the same run, on the
same N: a minimal Starlette SSE fan-out (bench/sse_reference.py) and Redis pub/sub
(Debian's redis-server, started here on loopback).

The clients are the stream protocol alone (raw SSE over httpx), not full SDK
clients: the bench measures the server, not thousands of client threads.

    .venv/bin/python bench/propagation.py [--clients 100,1000,5000] [--processes 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from ringfence.testing.ports import free_port
from ringfence.testing.server import ServerProcess

TOKEN = "rf_bench_admin"


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _sse_clients(url: str, first: int, count: int, kind: str, ready: Any, out: Any, rounds: int) -> None:
    received: list[list[float]] = [[] for _ in range(rounds)]
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=None), limits=limits) as client:
        async def one(index: int) -> None:
            if kind == "ringfence":
                params = {"instance": f"b-{index:05d}", "service": "bench", "configs": "bench/*"}
                headers = {"Authorization": f"Bearer {TOKEN}"}
                path = "/v1/stream"
            else:
                params, headers, path = {}, {}, "/stream"
            async with client.stream("GET", url + path, params=params, headers=headers) as response:
                seen, event = 0, ""
                async for line in response.aiter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                        if event == "snapshot":
                            ready.put(1)
                    elif line.startswith("data: ") and event == "update":
                        # Only the bench's own rounds count (ringfence nests the value, the reference does not).
                        data = json.loads(line[6:])
                        if data.get("value", data).get("round") == seen:
                            received[seen].append(time.time())
                            seen += 1
                            if seen == rounds:
                                return

        tasks = [asyncio.create_task(one(first + i)) for i in range(count)]
        await asyncio.gather(*tasks)
    out.put(received)


def client_process(url: str, first: int, count: int, kind: str, ready: Any, out: Any, rounds: int) -> None:
    asyncio.run(_sse_clients(url, first, count, kind, ready, out, rounds))


async def _redis_clients(port: int, count: int, ready: Any, out: Any, rounds: int) -> None:
    import redis.asyncio as redis

    received: list[list[float]] = [[] for _ in range(rounds)]

    async def one() -> None:
        connection = redis.Redis(port=port)
        pubsub = connection.pubsub()
        await pubsub.subscribe("bench")
        await pubsub.get_message(timeout=5)  # the subscribe confirmation
        ready.put(1)
        seen = 0
        while seen < rounds:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=30)
            if message:
                received[seen].append(time.time())
                seen += 1
        await pubsub.aclose()
        await connection.aclose()

    await asyncio.gather(*(one() for _ in range(count)))
    out.put(received)


def redis_process(port: int, count: int, ready: Any, out: Any, rounds: int) -> None:
    asyncio.run(_redis_clients(port, count, ready, out, rounds))


def run_clients(target: Any, args_for: Any, clients: int, processes: int, rounds: int,
                publish: Any) -> list[float]:
    ready: multiprocessing.Queue[int] = multiprocessing.Queue()
    out: multiprocessing.Queue[list[list[float]]] = multiprocessing.Queue()
    share = [clients // processes + (1 if i < clients % processes else 0) for i in range(processes)]
    procs, first = [], 0
    for count in share:
        procs.append(multiprocessing.Process(target=target, args=(*args_for(first, count), ready, out, rounds)))
        first += count
    for proc in procs:
        proc.start()
    for _ in range(clients):
        ready.get(timeout=300)
    time.sleep(1.0)  # let the last connections settle
    sent_at = []
    for round_index in range(rounds):
        sent_at.append(time.time())
        publish(round_index)
        time.sleep(max(1.0, clients / 2000))
    results = [out.get(timeout=300) for _ in procs]
    for proc in procs:
        proc.join(30)
    delays = []
    for round_index in range(rounds):
        times = [t for result in results for t in result[round_index]]
        assert len(times) == clients, f"round {round_index}: {len(times)} of {clients} clients got the update"
        delays.append(sorted(t - sent_at[round_index] for t in times))
    return [summary for d in delays for summary in (d[len(d) // 2], d[int(len(d) * 0.99) - 1], d[-1])]


def summarise(name: str, clients: int, values: list[float]) -> dict[str, Any]:
    rounds = [values[i:i + 3] for i in range(0, len(values), 3)]
    p50 = statistics.median(r[0] for r in rounds) * 1000
    p99 = statistics.median(r[1] for r in rounds) * 1000
    worst = statistics.median(r[2] for r in rounds) * 1000
    print(f"{name:10} N={clients:5}  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  max {worst:7.1f} ms", flush=True)
    return {"p50_ms": p50, "p99_ms": p99, "max_ms": worst}


def bench_ringfence(clients: int, processes: int, rounds: int, tmp: str) -> dict[str, Any]:
    server = ServerProcess(f"sqlite:///{tmp}/prop-{clients}.db", admin_token=TOKEN, log_path=Path(tmp) / "s.log",
                           env={"RINGFENCE_MAX_STREAMS": str(clients + 100)}).start()
    try:
        api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        api.put("/v1/policies/bench/*", json={"policy": {"stages": [{"name": "all", "min_instances": 0}]},
                                               "message": "one ring"}).raise_for_status()
        api.put("/v1/configs/bench/flag", json={"value": {"round": -1}, "message": "m"}).raise_for_status()
        assert server.process is not None
        idle = rss_kb(server.process.pid)

        memory: dict[str, float] = {}
        push_seconds: list[float] = []

        def publish(round_index: int) -> None:
            started = time.perf_counter()
            api.put("/v1/configs/bench/flag", headers={"If-Match": str(round_index + 1)},
                    json={"value": {"round": round_index}, "message": "bench"}).raise_for_status()
            push_seconds.append(time.perf_counter() - started)

        def connected_publish(round_index: int) -> None:
            if round_index == 0:
                memory["per_connection_kb"] = (rss_kb(server.process.pid) - idle) / clients  # type: ignore[union-attr]
            publish(round_index)

        values = run_clients(client_process, lambda first, count: (server.url, first, count, "ringfence"),
                             clients, processes, rounds, connected_publish)
        api.close()
    finally:
        server.stop()
    result = summarise("ringfence", clients, values)
    memory["push_ms"] = statistics.median(push_seconds) * 1000
    print(f"{'':10} server memory per idle connection: {memory['per_connection_kb']:.1f} KB; "
          f"the push itself answered in {memory['push_ms']:.0f} ms (median)", flush=True)
    return {**result, **memory}


def bench_sse_reference(clients: int, processes: int, rounds: int) -> dict[str, Any]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("sse_reference.py")), str(port)])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.post(f"http://127.0.0.1:{port}/publish", content=b"{}")
                break
            except httpx.TransportError:
                time.sleep(0.1)

        def publish(round_index: int) -> None:
            httpx.post(f"http://127.0.0.1:{port}/publish", content=json.dumps({"round": round_index}).encode())

        values = run_clients(client_process, lambda first, count: (f"http://127.0.0.1:{port}", first, count, "sse"),
                             clients, processes, rounds, publish)
    finally:
        proc.terminate()
        proc.wait(10)
    return summarise("sse-ref", clients, values)


def bench_redis(clients: int, processes: int, rounds: int, tmp: str) -> dict[str, Any] | None:
    server_bin = shutil.which("redis-server")
    try:
        import redis
    except ImportError:
        redis = None  # type: ignore[assignment]
    if server_bin is None or redis is None:
        print("redis     skipped: install Debian's redis-server and `pip install redis` (make bench does)")
        return None
    port = free_port()
    proc = subprocess.Popen([server_bin, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--maxclients", str(clients + 100), "--dir", tmp],
                            stdout=subprocess.DEVNULL)
    try:
        publisher = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                publisher.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        values = run_clients(redis_process, lambda _first, count: (port, count), clients, processes, rounds,
                             lambda round_index: publisher.publish("bench", json.dumps({"round": round_index})))
        publisher.close()
    finally:
        proc.terminate()
        proc.wait(10)
    return summarise("redis", clients, values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="100,1000,5000")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for clients in (int(c) for c in args.clients.split(",")):
            results[str(clients)] = {
                "ringfence": bench_ringfence(clients, args.processes, args.rounds, tmp),
                "sse_reference": bench_sse_reference(clients, args.processes, args.rounds),
                "redis": bench_redis(clients, args.processes, args.rounds, tmp),
            }
            ours, ref = results[str(clients)]["ringfence"], results[str(clients)]["sse_reference"]
            print(f"{'':10} ratio to the minimal SSE reference: p99 x{ours['p99_ms'] / ref['p99_ms']:.2f}", flush=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
