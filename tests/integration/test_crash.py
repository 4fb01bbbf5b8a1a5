"""kill -9 the server in a loop while clients push: every acknowledged push survives,
nothing unacknowledged is half there."""

from __future__ import annotations

import random
import sqlite3
import threading
import time

import httpx
import pytest

from ringfence.testing.server import ServerProcess

ROUNDS = 6
PUSHERS = 3


def pusher(url: str, token: str, name: str, acknowledged: dict[int, str], stop: threading.Event) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=5) as api:
        version = max(acknowledged, default=0)
        while not stop.is_set():
            headers = {"If-Match": str(version)} if version else {}
            try:
                response = api.put(f"/v1/configs/{name}", headers=headers,
                                   json={"value": {"n": version + 1, "pad": "x" * 200}, "message": "push"})
            except httpx.TransportError:
                return  # the server died under us: this push may or may not have landed
            if response.status_code != 201:
                return
            revision = response.json()["revision"]
            acknowledged[revision["version"]] = revision["hash"]
            version = revision["version"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_kill_9_during_pushes_loses_no_acknowledged_change(db_url: str, tmp_path, seed: int) -> None:
    rng = random.Random(seed)
    acknowledged: dict[str, dict[int, str]] = {f"crash/c{i}": {} for i in range(PUSHERS)}
    server = ServerProcess(db_url, log_path=tmp_path / "server.log")
    for _ in range(ROUNDS):
        server.start()
        # Resume each pusher from the truth: the in-flight push of the last round may have landed.
        with server.client() as api:
            for name, acked in acknowledged.items():
                response = api.get(f"/v1/configs/{name}")
                if response.status_code == 200:
                    head = response.json()
                    acked.setdefault(head["version"], head["hash"])
        stop = threading.Event()
        threads = [threading.Thread(target=pusher, args=(server.url, server.admin_token, name, acked, stop))
                   for name, acked in acknowledged.items()]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(0.05, 0.6))
        server.kill()
        stop.set()
        for thread in threads:
            thread.join()

    server.start()
    try:
        with server.client() as api:
            for name, acked in acknowledged.items():
                assert acked, "the pushers made progress"
                history = api.get(f"/v1/configs/{name}/-/revisions", params={"limit": 500}).json()["items"]
                stored = {r["version"]: r for r in history}
                for version, digest in acked.items():
                    assert stored[version]["hash"] == digest, f"{name} v{version} acknowledged but lost"
                assert sorted(stored) == list(range(1, len(stored) + 1)), "no gaps, no half-written versions"
                # At most the one push in flight at each kill can be there unacknowledged.
                assert len(stored) - len(acked) <= ROUNDS
                head = api.get(f"/v1/configs/{name}").json()
                assert head["version"] == max(stored)
                audit = api.get("/v1/audit", params={"subject": name, "limit": 1000}).json()["items"]
                pushes = [e["seq"] for e in audit if e["action"] == "config.push"]
                starts = [e["seq"] for e in audit if e["action"] == "rollout.start"]
                assert sorted(pushes) == sorted(starts) == sorted(r["seq"] for r in history), \
                    "every stored revision has its audit event and its rollout, and nothing lacks its revision"
    finally:
        server.stop()
    if db_url.startswith("sqlite"):
        path = db_url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
