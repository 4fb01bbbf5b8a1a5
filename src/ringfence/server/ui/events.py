"""/ui/events: a small Server-Sent Event whenever a config or its rollout changes, and a tick.

`change` carries only the config's name (listeners re-fetch the fragment they show); `tick`
comes every TICK seconds so that what moves without a commit the Changes bus hears of (a
verdict, new health reports in the charts, liveness) shows too. The stream is authenticated
by the session cookie and ends when the session does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from ringfence.core.access import in_scope
from ringfence.errors import RingfenceError
from ringfence.server.ui.deps import router, who

routes = router()
TICK = 2.0
RECHECK = 10.0  # s between re-reads of the session and its token: a logout or revocation ends the stream
BACKLOG = 256  # configs waiting per stream; past this a stream gets a tick's refresh instead


def _sse(event: str, data: object) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class Broadcast:
    """Fans the Changes bus (called from any thread, after commit) out to the open streams."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[str]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def changed(self, config: str) -> None:
        loop = self._loop
        if loop is not None and self._queues and not loop.is_closed():
            loop.call_soon_threadsafe(self._fan, config)

    def _fan(self, config: str) -> None:
        for queue in self._queues:
            if queue.qsize() < BACKLOG:
                queue.put_nowait(config)

    def join(self) -> asyncio.Queue[str]:
        self._loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._queues.add(queue)
        return queue

    def leave(self, queue: asyncio.Queue[str]) -> None:
        self._queues.discard(queue)


@routes.get("/events")
async def events(request: Request) -> Response:
    caller = await run_in_threadpool(who, request)  # no session: a 401, never a stream
    broadcast: Broadcast = request.app.state.ui_broadcast
    queue = broadcast.join()

    async def stream() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        try:
            yield b"retry: 3000\n\n"
            next_tick = loop.time() + TICK
            next_check = loop.time() + RECHECK
            while True:
                if loop.time() >= next_check:
                    try:
                        await run_in_threadpool(who, request)
                    except RingfenceError:  # logged out, idled out, or the token was revoked
                        break
                    next_check = loop.time() + RECHECK
                try:
                    first = await asyncio.wait_for(queue.get(), max(next_tick - loop.time(), 0.0))
                except TimeoutError:
                    yield _sse("tick", {})
                    next_tick = loop.time() + TICK
                    continue
                names = {first}
                while not queue.empty():
                    names.add(queue.get_nowait())
                for name in sorted(names):
                    if in_scope(caller.token, name):  # config names out of the token's scope stay unseen
                        yield _sse("change", {"config": name})
        finally:
            broadcast.leave(queue)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
