"""The reference for bench/ingest.py: a bare Starlette POST endpoint that parses JSON and answers 202.

No auth, no checks, no queue: the least a JSON POST endpoint on uvicorn can do, to compare
ringfence's metric ingestion against.

    .venv/bin/python bench/post_reference.py PORT
"""

from __future__ import annotations

import json
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def metrics(request: Request) -> JSONResponse:
    body = json.loads(await request.body() or b"{}")
    return JSONResponse({"accepted": len(body.get("windows", ()))}, status_code=202)


app = Starlette(routes=[Route("/v1/metrics", metrics, methods=["POST"])])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
