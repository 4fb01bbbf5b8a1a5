"""A WSGI app for the gunicorn pre-fork test: the ringfence Client is created at import.

Run with `gunicorn --preload`, this module is imported once, in gunicorn's master,
and the workers are forked from it with the client already inside: exactly the
set-up that leaves other SDKs serving stale values in the workers. Each request
answers which worker served it and what that worker's client holds.

Settings come from the environment: PREFORK_URL, PREFORK_TOKEN.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

import ringfence

client = ringfence.Client(os.environ["PREFORK_URL"], token=os.environ["PREFORK_TOKEN"], service="prefork",
                          configs=["shop/*"])
client.wait_ready(10.0)
MASTER_PID = os.getpid()


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = json.dumps({
        "pid": os.getpid(), "master_pid": MASTER_PID, "instance": client.instance_id, "status": client.status,
        "limit": client.value("shop/limits", "limit"),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
