"""Nanoseconds per SDK read, against a plain dict lookup and peers' local flag evaluation, in one process.

What is measured: the time of one call as application code writes it, e.g.
`client.get("payments/limits")` with `client` a module global, in a `timeit` loop.
The clock is the measuring thread's CPU time (`time.thread_time`) by default: on
this 2-core machine other people's processes often hold the CPUs, and wall time
then also counts the moments this process was not running at all. `--clock wall`
uses `time.perf_counter`, timeit's own clock. None of the calls measured hands work
to another thread, so CPU time misses nothing of theirs.

Nothing is subtracted: the loop's own cost (the `pass` line) is inside every figure,
the references' included, so ratios slightly flatter the slow lines. Each line runs
`--repeat` times for at least `--min-time` seconds; repeats are interleaved (one
repeat of every line, then the next), so a slow moment of the machine touches every
line alike. A line's ns/op is the median of its repeats; its ratio to its reference
is the median of the per-repeat ratios (each against the reference's time in the
same repeat), which other processes' load disturbs least. Garbage collection is off
while timing, as timeit does.

- ringfence: a `Client` made with `bootstrap=` and pointed at a closed loopback port,
  so every read is served from the bootstrapped snapshot in memory (status `stale`).
- references: `d["payments/limits"]` (get's) and `d["checkout/http"]["timeouts"]["connect_ms"]`
  (value's), on plain dicts holding the same documents.
- peers, bootstrapped and evaluating locally with no server: Unleash (`UnleashClient`,
  FileCache bootstrapped from a dict, registration and metrics off, no fetching),
  GrowthBook (`GrowthBook(features=...)`) and OpenFeature (`InMemoryProvider`). They are
  not dependencies of ringfence: `make bench` installs them; a missing or failing peer is
  printed as skipped with the reason.

    .venv/bin/python bench/sdk_read.py [--repeat 7] [--min-time 0.2] [--clock thread|wall] [--json]
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import logging
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from ringfence.sdk.client import Client
from ringfence.testing.ports import free_port
from timing import Line, measure, print_lines

TARGET = 3.0  # issue 4: get() within 3x of a plain dict lookup

# The documents every side reads; filler configs so the lookups are not into a two-key dict.
CONFIGS: dict[str, Any] = {
    "payments/limits": {"max_amount_cents": 500_000, "currencies": ["EUR", "USD", "GBP"], "daily_cap": 20},
    "checkout/http": {"timeouts": {"connect_ms": 250, "read_ms": 2_000}, "retries": 2, "hosts": ["a", "b"]},
    **{f"bench/filler-{i:02d}": {"enabled": i % 2 == 0, "weight": i} for i in range(48)},
}


def reference_lines() -> list[Line]:
    d = json.loads(json.dumps(CONFIGS))  # plain dicts and lists, as a service would hold them itself
    env = {"d": d}
    return [
        Line("reference", "loop overhead (inside every line)", "pass", {}, "dict"),
        Line("reference", "dict lookup", 'd["payments/limits"]', env, "dict"),
        Line("reference", "nested dict lookup", 'd["checkout/http"]["timeouts"]["connect_ms"]', env, "nested"),
    ]


def ringfence_lines(closers: list[Callable[[], object]]) -> list[Line]:
    # Nothing listens on the port: the client's thread fails to connect (and backs off) while
    # every read is served from the bootstrap. Its warnings about that are expected: silenced.
    logging.getLogger("ringfence.sdk").setLevel(logging.CRITICAL)
    client = Client(f"http://127.0.0.1:{free_port()}", token="rf_bench", service="bench", bootstrap=CONFIGS)
    closers.append(client.close)
    assert client.get("payments/limits")["daily_cap"] == 20
    assert client.value("checkout/http", "timeouts.connect_ms", default=500) == 250
    env = {"client": client}
    return [
        Line("ringfence", "get()", 'client.get("payments/limits")', env, "dict"),
        Line("ringfence", "value() dotted path", 'client.value("checkout/http", "timeouts.connect_ms", default=500)',
             env, "nested"),
        Line("ringfence", "value() absent path → default",
             'client.value("checkout/http", "timeouts.absent_ms", default=500)', env, "nested"),
        Line("ringfence", "get() absent config → default", 'client.get("absent/config", 0)', env, "dict"),
    ]


UNLEASH_FEATURES = {
    "version": 2,
    "features": [
        {"name": "bench.flag", "enabled": True, "strategies": [{"name": "default", "parameters": {}}]},
        {"name": "bench.variant", "enabled": True, "strategies": [{"name": "default", "parameters": {}}],
         "variants": [{"name": "blue", "weight": 1000, "stickiness": "default", "weightType": "variable",
                       "payload": {"type": "string", "value": "blue"}}]},
    ],
}


def unleash_lines(closers: list[Callable[[], object]], tmp: str) -> list[Line]:
    from UnleashClient import UnleashClient
    from UnleashClient.cache import FileCache

    for logger in ("UnleashClient", "apscheduler"):  # "job ... was missed by" while the CPUs are busy timing
        logging.getLogger(logger).setLevel(logging.ERROR)
    cache = FileCache("ringfence-bench", directory=tmp)
    cache.bootstrap_from_dict(UNLEASH_FEATURES)
    client = UnleashClient(f"http://127.0.0.1:{free_port()}/api", "ringfence-bench", cache=cache,
                           disable_metrics=True, disable_registration=True)
    client.initialize_client(fetch_toggles=False)  # offline: features come from the bootstrapped cache only
    closers.append(client.destroy)
    assert client.is_enabled("bench.flag") is True
    assert client.get_variant("bench.variant")["name"] == "blue"
    env = {"unleash": client}
    return [
        Line("Unleash", "is_enabled()", 'unleash.is_enabled("bench.flag")', env, "dict"),
        Line("Unleash", "get_variant()", 'unleash.get_variant("bench.variant")', env, "dict"),
    ]


def growthbook_lines(closers: list[Callable[[], object]], _tmp: str) -> list[Line]:
    from growthbook import GrowthBook

    gb = GrowthBook(features={"bench-flag": {"defaultValue": True}, "bench-string": {"defaultValue": "blue"}})
    closers.append(gb.destroy)
    assert gb.is_on("bench-flag") is True
    assert gb.get_feature_value("bench-string", "red") == "blue"
    env = {"gb": gb}
    return [
        Line("GrowthBook", "is_on()", 'gb.is_on("bench-flag")', env, "dict"),
        Line("GrowthBook", "get_feature_value()", 'gb.get_feature_value("bench-string", "red")', env, "dict"),
    ]


def openfeature_lines(closers: list[Callable[[], object]], _tmp: str) -> list[Line]:
    from openfeature import api
    from openfeature.provider.in_memory_provider import InMemoryFlag, InMemoryProvider

    api.set_provider(InMemoryProvider({
        "bench-flag": InMemoryFlag("on", {"on": True, "off": False}),
        "bench-string": InMemoryFlag("blue", {"blue": "blue", "red": "red"}),
    }))
    closers.append(api.shutdown)
    client = api.get_client()
    assert client.get_boolean_value("bench-flag", False) is True
    assert client.get_string_value("bench-string", "red") == "blue"
    env = {"of": client}
    return [
        Line("OpenFeature", "get_boolean_value()", 'of.get_boolean_value("bench-flag", False)', env, "dict"),
        Line("OpenFeature", "get_string_value()", 'of.get_string_value("bench-string", "red")', env, "dict"),
    ]


PEERS: list[tuple[str, str, Callable[[list[Callable[[], object]], str], list[Line]]]] = [
    ("Unleash", "UnleashClient", unleash_lines),
    ("GrowthBook", "growthbook", growthbook_lines),
    ("OpenFeature", "openfeature-sdk", openfeature_lines),
]


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ""


CLOCKS = {"thread": time.thread_time, "wall": time.perf_counter}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed repeats per line (the figure is their median)")
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds per repeat, at least")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="thread",
                        help="thread: this thread's CPU time (default); wall: elapsed time")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    args = parser.parse_args()

    closers: list[Callable[[], object]] = []
    lines = reference_lines() + ringfence_lines(closers)
    skipped: list[Line] = []
    versions = {"python": platform.python_version(), "ringfence": version("ringfence")}
    with tempfile.TemporaryDirectory() as tmp:
        for name, dist, make in PEERS:
            versions[name] = version(dist)
            try:
                lines += make(closers, tmp)
            except ImportError as error:
                why = f"not installed ({error.name}; make bench installs it)"
                skipped.append(Line(name, "", "", {}, "", skipped=why))
            except Exception as error:  # a peer that cannot run offline must not end the bench
                skipped.append(Line(name, "", "", {}, "", skipped=f"{type(error).__name__}: {error}"))
        time.sleep(0.5)  # let the clients' background threads settle into their waits
        try:
            measure(lines, args.repeat, args.min_time, CLOCKS[args.clock])
        finally:
            for close in reversed(closers):
                try:
                    close()
                except Exception as error:
                    print(f"closing a client failed: {error!r}", file=sys.stderr)
    gc.collect()

    bases = {"dict": lines[1], "nested": lines[2]}
    get_ratio = lines[3].ratio(bases["dict"])
    peers = [line for line in lines if line.group not in ("reference", "ringfence")]
    fastest_peer = min(peers, key=lambda line: line.ns) if peers else None
    result: dict[str, Any] = {
        "versions": versions,
        "repeat": args.repeat,
        "min_time_s": args.min_time,
        "clock": args.clock,
        "lines": [{"group": line.group, "label": line.label, "call": line.stmt, "ns": round(line.ns, 1),
                   "min_ns": round(min(line.times) * 1e9, 1), "max_ns": round(max(line.times) * 1e9, 1),
                   "calls_per_repeat": line.number, "vs": line.base,
                   "ratio": round(line.ratio(bases[line.base]), 2)} for line in lines],
        "skipped": {line.group: line.skipped for line in skipped},
        "target": {"get_over_dict": round(get_ratio, 2), "target": TARGET, "met": get_ratio <= TARGET,
                   "fastest_peer": fastest_peer.stmt if fastest_peer else None,
                   "fastest_peer_over_get": round(fastest_peer.ratio(lines[3]), 1) if fastest_peer else None},
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0


def print_table(result: dict[str, Any]) -> None:
    versions = result["versions"]
    clock = {"thread": "CPU time", "wall": "wall time"}[result["clock"]]
    shown = [{**line, "vs": {"dict": "d[k]", "nested": "d[k][a][b]"}[line["vs"]]} for line in result["lines"]]
    console = print_lines(f"SDK reads, ns per call ({clock}): median of {result['repeat']} interleaved repeats; "
                          + ", ".join(f"{k} {v}" for k, v in versions.items() if v), shown, result["skipped"])
    target = result["target"]
    verdict = "met" if target["met"] else "NOT met"
    console.print(f"target (issue 4): get() within {target['target']:.0f}x of the dict lookup: {verdict} "
                  f"({target['get_over_dict']:.2f}x)")
    if target["fastest_peer"]:
        console.print(f"fastest peer call: {target['fastest_peer']}, {target['fastest_peer_over_get']:,.1f}x get()")


if __name__ == "__main__":
    sys.exit(main())
