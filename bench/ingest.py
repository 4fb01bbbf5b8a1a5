"""Metric reports ingested per second, against a bare Starlette POST endpoint in the same run.

A real `ringfence serve` (SQLite) with N registered instances and a rollout running, so
every report is filed as canary or baseline observations the way production files them.
Debian's `wrk` (started here, two threads) posts one-window reports, each from the next
instance in turn, for `--seconds`; then the same load goes to bench/post_reference.py, a
Starlette endpoint that parses the JSON body and answers 202, and nothing else. Reported:
requests/s of both, their ratio, wrk's latency percentiles, and how many reports the
server counted (its own Prometheus counter), so dropped or refused ones cannot hide.

    .venv/bin/python bench/ingest.py [--instances 3000] [--seconds 10] [--connections 64]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shutil
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
LE = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]
CONFIG = "bench/flag"

# wrk's request() runs per request: each takes the next pre-built body, so the Lua side costs
# one table read. Bodies are made once here in Python and handed over in a file.
LUA = r"""
local bodies, n, i = {}, 0, 0
for line in io.lines("%(bodies)s") do n = n + 1; bodies[n] = line end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
request = function()
  i = i %% n + 1
  return wrk.format(nil, "/%(path)s", nil, bodies[i])
end
"""


def report(instance: str, version: int, now: float) -> str:
    counts = [0, 3, 40, 70, 12, 3, 1, 1, 0, 0, 0, 0]
    return json.dumps({"instance": instance, "windows": [{
        "start": now - 10, "end": now, "revisions": {CONFIG: version}, "requests": sum(counts), "errors": 1,
        "latency_ms": {"le": LE, "counts": counts}, "gauges": {"cpu": 0.31, "rss_mb": 212.5}}], "dropped": 0},
        separators=(",", ":"))


def wrk(url: str, path: str, bodies: Path, seconds: int, connections: int, tmp: Path) -> dict[str, Any]:
    script = tmp / f"{path.replace('/', '_')}.lua"
    script.write_text(LUA % {"bodies": bodies, "token": TOKEN, "path": path.lstrip("/")})
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    latency = {p: m.group(2) for p in ("50%", "99%") if (m := re.search(rf"\s({re.escape(p)})\s+([\d.]+\w+)", out))}
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {"requests_per_s": rate, "requests": total, "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
            "latency": latency}


def prepare(server: ServerProcess, instances: int) -> list[tuple[str, int]]:
    """Register the fleet and start a rollout whose canaries are half of it."""
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as api:
        api.put("/v1/policies/bench/*", json={"policy": {"stages": [
            {"name": "half", "percent": 50, "bake": {"min": "1h", "max": "2h"}}, {"name": "all"}]},
            "message": "bench"}).raise_for_status()
        api.put(f"/v1/configs/{CONFIG}", json={"value": 1, "message": "first"}).raise_for_status()
        first = api.get("/v1/rollouts", params={"config": CONFIG}).json()["items"][0]["id"]
        for _ in range(2):
            api.post(f"/v1/rollouts/{first}/promote", json={"reason": "bench set-up"})

        def register(index: int) -> None:
            with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as one:
                one.post("/v1/instances", json={"id": f"b-{index:05d}", "service": "bench",
                                                "configs": ["bench/*"]}).raise_for_status()

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(register, range(instances)))
        api.put(f"/v1/configs/{CONFIG}", headers={"If-Match": "1"},
                json={"value": 2, "message": "the change under analysis"}).raise_for_status()
        members = {item["id"]: item["assignment"]["version"] for item in
                   api.get("/v1/instances", params={"config": CONFIG}).json()["items"]}
    return [(instance, members.get(instance) or 1) for instance in (f"b-{i:05d}" for i in range(instances))]


def reports_counted(server: ServerProcess) -> float:
    text = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    found = re.search(r"^ringfence_metric_reports_total ([\d.e+]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=3000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench/ingest.py needs Debian's wrk: `make bench` installs it "
              "(RINGFENCE_NEED_WRK=1 scripts/ensure-system-deps.sh)")
        return 2
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        server = ServerProcess(f"sqlite:///{tmp}/ingest.db", admin_token=TOKEN, log_path=tmp / "server.log").start()
        try:
            fleet = prepare(server, args.instances)
            bodies = tmp / "bodies.jsonl"
            bodies.write_text("".join(report(i, v, time.time()) + "\n" for i, v in fleet))
            before = reports_counted(server)
            if os.environ.get("RINGFENCE_BENCH_PROFILE"):
                assert server.process is not None
                subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--pid",
                                  str(server.process.pid), "--duration", str(args.seconds - 2), "--format", "raw",
                                  "--output", os.environ["RINGFENCE_BENCH_PROFILE"], "--nonblocking"])
            ours = wrk(server.url, "/v1/metrics", bodies, args.seconds, args.connections, tmp)
            time.sleep(2)  # the last flush
            counted = reports_counted(server) - before
        finally:
            server.stop()
        port = free_port()
        reference = subprocess.Popen([sys.executable, str(Path(__file__).with_name("post_reference.py")), str(port)])
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    httpx.post(f"http://127.0.0.1:{port}/v1/metrics", content=b"{}")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            bare = wrk(f"http://127.0.0.1:{port}", "/v1/metrics", bodies, args.seconds, args.connections, tmp)
        finally:
            reference.terminate()
            reference.wait(10)
    print(f"ringfence  {ours['requests_per_s']:8.0f} reports/s  p50 {ours['latency'].get('50%')}  "
          f"p99 {ours['latency'].get('99%')}  non-2xx {ours['non_2xx']}  counted by the server {counted:.0f} "
          f"of {ours['requests']}")
    print(f"reference  {bare['requests_per_s']:8.0f} requests/s  p50 {bare['latency'].get('50%')}  "
          f"p99 {bare['latency'].get('99%')}")
    print(f"ratio      {ours['requests_per_s'] / bare['requests_per_s']:.2f} of the bare Starlette endpoint; "
          f"{args.instances} instances reporting every 10 s need {args.instances / 10:.0f}/s")
    print(json.dumps({"ringfence": ours, "reference": bare, "counted": counted}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
