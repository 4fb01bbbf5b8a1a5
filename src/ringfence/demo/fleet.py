"""The simulated fleet: real `ringfence.Client`s in a few worker processes, each serving synthetic traffic.

A worker (`python -m ringfence.demo.fleet`, its plan as JSON on stdin) holds ~20 instances.
Every tenth of a second it asks each instance's client for the config it runs (a memory read,
as a real service does per request), serves that instance's requests under it (traffic.py)
and records them with the SDK (`record`, `gauge`); the SDK sends them to the server in 1 s
windows, tagged with the revision in force. A worker stops when its stdin says `stop` or
closes, so it never outlives the demo. Workers are plain subprocesses rather than
`multiprocessing` children: nothing depends on how the demo itself was started.
"""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import IO, Any

from ringfence.demo.scenario import CONFIG, MEMORY_GAUGE, PATTERN, InstanceSpec
from ringfence.demo.traffic import SimulatedInstance

PER_PROCESS = 20
TICK_SECONDS = 0.1
REPORT_INTERVAL = 1.0
READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class WorkerPlan:
    url: str
    token: str
    instances: tuple[InstanceSpec, ...]
    seed: int

    def to_json(self) -> str:
        return json.dumps({"url": self.url, "token": self.token, "seed": self.seed,
                           "instances": [asdict(spec) for spec in self.instances]})

    @classmethod
    def from_json(cls, text: str) -> WorkerPlan:
        data = json.loads(text)
        return cls(data["url"], data["token"], tuple(InstanceSpec(**spec) for spec in data["instances"]),
                   int(data["seed"]))


def _close_all(clients: Sequence[Any]) -> None:
    closing = [threading.Thread(target=client.close) for client in clients]  # each waits for its own threads
    for thread in closing:
        thread.start()
    for thread in closing:
        thread.join(10)


def _say(kind: str, **data: Any) -> None:
    sys.stdout.write(json.dumps({"kind": kind, **data}) + "\n")
    sys.stdout.flush()


def serve(plan: WorkerPlan, stop: threading.Event) -> None:
    """Start the plan's clients, say when they are ready, serve traffic until `stop`."""
    import ringfence  # here, not at the top: the parent never needs the SDK's threads

    clients = [ringfence.Client(plan.url, token=plan.token, service=spec.service, region=spec.region,
                                zone=f"{spec.region}-a", labels=spec.labels, instance_id=spec.id,
                                configs=[PATTERN], report_interval=REPORT_INTERVAL)
               for spec in plan.instances]
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        ready = sum(client.wait_ready(max(0.1, deadline - time.monotonic())) for client in clients)
        _say("ready", ready=ready, instances=len(clients))
        sims = [SimulatedInstance(spec, plan.seed) for spec in plan.instances]
        last = time.monotonic()
        while not stop.wait(max(0.0, last + TICK_SECONDS - time.monotonic())):
            now = time.monotonic()
            # Serve the time that really passed, so a busy machine slows the ticks, not the traffic.
            seconds, last = min(now - last, 1.0), now
            for sim, client in zip(sims, clients, strict=True):
                served = sim.serve(client.get(CONFIG), seconds)
                client.record(requests=served.requests, errors=served.errors, latency_ms=served.latency_ms)
                client.gauge(MEMORY_GAUGE, served.heap_mb)
    finally:
        _close_all(clients)


def _watch_stdin(stop: threading.Event) -> None:
    # `stop`, or the end of stdin (the demo exited or died), ends the traffic.
    for line in sys.stdin:
        if line.strip() == "stop":
            break
    stop.set()


def main() -> None:
    plan = WorkerPlan.from_json(sys.stdin.readline())
    stop = threading.Event()
    threading.Thread(target=_watch_stdin, args=(stop,), daemon=True).start()
    serve(plan, stop)


class Fleet:
    """The worker processes, started and stopped from the demo's process."""

    def __init__(self, url: str, token: str, specs: Sequence[InstanceSpec], seed: int,
                 log: IO[bytes] | None = None) -> None:
        self.specs = list(specs)
        count = max(1, math.ceil(len(self.specs) / PER_PROCESS))
        # Round robin: every process holds some of each service, region and ring.
        self.plans = [WorkerPlan(url, token, tuple(self.specs[i::count]), seed) for i in range(count)]
        self.log = log
        self._processes: list[subprocess.Popen[str]] = []

    @property
    def processes(self) -> int:
        return len(self.plans)

    def start(self, timeout: float = READY_TIMEOUT + 30.0) -> None:
        """Start every worker and wait until each says its clients are ready; RuntimeError otherwise."""
        for plan in self.plans:
            process = subprocess.Popen([sys.executable, "-m", "ringfence.demo.fleet"], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=self.log or subprocess.DEVNULL, text=True)
            assert process.stdin is not None
            process.stdin.write(plan.to_json() + "\n")
            process.stdin.flush()
            self._processes.append(process)
        ready = 0
        deadline = time.monotonic() + timeout
        for process in self._processes:
            message = self._read(process, deadline)
            if message is None or message.get("kind") != "ready":
                code = process.poll()
                raise RuntimeError(f"a fleet worker exited with code {code} before its instances were ready"
                                   if code is not None else f"a fleet worker was not ready within {timeout:g} s")
            ready += int(message["ready"])
        if ready < len(self.specs):
            raise RuntimeError(f"only {ready} of {len(self.specs)} instances reached the server")

    @staticmethod
    def _read(process: subprocess.Popen[str], deadline: float) -> dict[str, Any] | None:
        """The worker's next message, or None when it ends or the deadline passes first."""
        found: list[dict[str, Any]] = []

        def read() -> None:
            assert process.stdout is not None
            line = process.stdout.readline()
            with contextlib.suppress(ValueError):
                found.append(json.loads(line))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(max(0.1, deadline - time.monotonic()))
        return found[0] if found else None

    def stop(self) -> None:
        """Stop the traffic; each worker closes its clients (they say goodbye to the server) and exits."""
        for process in self._processes:
            with contextlib.suppress(OSError, ValueError):
                assert process.stdin is not None
                process.stdin.write("stop\n")
                process.stdin.close()
        deadline = time.monotonic() + 20.0
        for process in self._processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self._processes.clear()

    def __enter__(self) -> Fleet:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


if __name__ == "__main__":
    main()
