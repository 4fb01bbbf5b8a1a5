"""The reference for bench/propagation.py: a minimal Starlette SSE fan-out endpoint.

GET /stream holds a connection open and sends every published message; POST /publish
sends one message to every connection. No auth, no state, no persistence: the least
an SSE fan-out on uvicorn can do, to compare ringfence's stream against.

    .venv/bin/python bench/sse_reference.py PORT
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

queues: set[asyncio.Queue[bytes]] = set()


async def stream(_request: Request) -> StreamingResponse:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    queues.add(queue)

    async def events() -> AsyncIterator[bytes]:
        try:
            yield b"event: snapshot\ndata: {}\n\n"
            while True:
                yield await queue.get()
        finally:
            queues.discard(queue)

    return StreamingResponse(events(), media_type="text/event-stream")


async def publish(request: Request) -> PlainTextResponse:
    message = b"event: update\ndata: " + await request.body() + b"\n\n"
    for queue in queues:
        queue.put_nowait(message)
    return PlainTextResponse(str(len(queues)))


app = Starlette(routes=[Route("/stream", stream), Route("/publish", publish, methods=["POST"])])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
