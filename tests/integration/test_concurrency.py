"""Twenty writers racing on one config with If-Match: one winner per version, nothing lost."""

from __future__ import annotations

import threading
from collections import Counter

WRITERS = 20
WINS_PER_WRITER = 4


def test_concurrent_writers_with_if_match_never_lose_or_overwrite(server) -> None:
    with server.client() as api:
        api.put("/v1/configs/shared/counter", json={"value": {"writer": None}, "message": "start"}).raise_for_status()
    wins: list[tuple[int, int, int, str]] = []  # (version, seq, writer, hash)
    attempts: Counter[int] = Counter()
    lock = threading.Lock()

    def writer(index: int) -> None:
        with server.client() as api:
            won = 0
            while won < WINS_PER_WRITER:
                current = api.get("/v1/configs/shared/counter").json()["version"]
                response = api.put(
                    "/v1/configs/shared/counter", headers={"If-Match": str(current)},
                    json={"value": {"writer": index, "win": won}, "message": f"writer {index}"},
                )
                with lock:
                    attempts[current + 1] += 1
                if response.status_code == 201:
                    revision = response.json()["revision"]
                    with lock:
                        wins.append((revision["version"], revision["seq"], index, revision["hash"]))
                    won += 1
                else:
                    assert response.status_code == 409, response.text
                    assert response.json()["current_version"] > current

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    total = WRITERS * WINS_PER_WRITER
    versions = sorted(w[0] for w in wins)
    assert versions == list(range(2, total + 2)), "each version won exactly once"
    by_version = sorted(wins)
    seqs = [w[1] for w in by_version]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "seq strictly increases with version"
    assert sum(attempts.values()) >= total
    with server.client() as api:
        history = api.get("/v1/configs/shared/counter/-/revisions", params={"limit": 500}).json()["items"]
        assert len(history) == total + 1
        stored = {r["version"]: r["hash"] for r in history}
        for version, _seq, _writer, digest in wins:
            assert stored[version] == digest, "every acknowledged write is stored as acknowledged"
        for r in history:
            if r["parent"] is not None:
                assert r["parent"] == r["version"] - 1
