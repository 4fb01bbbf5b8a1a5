"""Revisions per second through the REST API, on SQLite and on PostgreSQL.

Each client process pushes new versions of its own configs (with If-Match, as the
CLI does) for a fixed time against a real `ringfence serve` on loopback. In the
same run, a reference: the same number of bare single-row commits per second
straight into the same database engine with the same durability settings, so the
figure reads as "how much of the database's commit rate the API keeps".

    .venv/bin/python bench/store_write.py [--seconds 10] [--processes 4] [--threads 4] [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from ringfence.testing.postgres import TemporaryPostgres
from ringfence.testing.server import ServerProcess

TOKEN = "rf_bench_admin"


def client_process(url: str, index: int, threads: int, seconds: float, out: multiprocessing.Queue) -> None:
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def run(thread: int) -> None:
        name = f"bench/p{index}-t{thread}"
        version = 0
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as api:
            while time.monotonic() < deadline:
                headers = {"If-Match": str(version)} if version else {}
                started = time.perf_counter()
                response = api.put(f"/v1/configs/{name}", headers=headers,
                                   json={"value": {"limit": version, "note": "x" * 100}, "message": "bench"})
                elapsed = time.perf_counter() - started
                response.raise_for_status()
                version = response.json()["revision"]["version"]
                with lock:
                    latencies.append(elapsed)

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    out.put(latencies)


def api_rate(url: str, processes: int, threads: int, seconds: float) -> dict[str, float]:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    started = time.perf_counter()
    procs = [multiprocessing.Process(target=client_process, args=(url, i, threads, seconds, queue))
             for i in range(processes)]
    for proc in procs:
        proc.start()
    latencies = [lat for _ in procs for lat in queue.get()]
    for proc in procs:
        proc.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "revisions": len(latencies),
        "per_second": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def sqlite_reference(path: Path, seconds: float) -> float:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("CREATE TABLE ref (id INTEGER PRIMARY KEY, body TEXT)")
    count, deadline = 0, time.monotonic() + seconds
    started = time.perf_counter()
    while time.monotonic() < deadline:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO ref (body) VALUES (?)", ("x" * 150,))
        connection.execute("COMMIT")
        count += 1
    return count / (time.perf_counter() - started)


def postgres_reference(url: str, seconds: float) -> float:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE TABLE ref (id BIGSERIAL PRIMARY KEY, body TEXT)")
        count, deadline = 0, time.monotonic() + seconds
        started = time.perf_counter()
        while time.monotonic() < deadline:
            connection.execute("INSERT INTO ref (body) VALUES (%s)", ("x" * 150,))
            count += 1
        return count / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            if backend == "sqlite":
                db = f"sqlite:///{tmp}/bench.db"
                reference = sqlite_reference(Path(tmp) / "reference.db", args.seconds)
                with ServerProcess(db, admin_token=TOKEN, log_path=Path(tmp) / "sqlite.log") as server:
                    measured = api_rate(server.url, args.processes, args.threads, args.seconds)
            else:
                with TemporaryPostgres(durable=True) as postgres:
                    reference = postgres_reference(postgres.create_database(), args.seconds)
                    with ServerProcess(postgres.create_database(), admin_token=TOKEN,
                                       log_path=Path(tmp) / "pg.log") as server:
                        measured = api_rate(server.url, args.processes, args.threads, args.seconds)
            results[backend] = {**measured, "reference_commits_per_second": reference,
                                "ratio_to_reference": measured["per_second"] / reference}
            print(f"{backend:9} {measured['per_second']:7.0f} revisions/s through the API "
                  f"(p50 {measured['p50_ms']:.1f} ms, p99 {measured['p99_ms']:.1f} ms); "
                  f"bare commits {reference:7.0f}/s; ratio {measured['per_second'] / reference:.2f}",
                  flush=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
