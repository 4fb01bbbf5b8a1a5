"""`ringfence serve`: open the store, make sure an admin can get in, serve HTTP with uvicorn."""

from __future__ import annotations

import sys

import uvicorn

from ringfence.server.app import build_services, create_app
from ringfence.server.settings import Settings
from ringfence.store.sql import describe, open_store


def serve(settings: Settings) -> None:
    store = open_store(settings.db, synchronous=settings.sqlite_synchronous)
    services = build_services(store, settings)
    first_token = services.tokens.bootstrap(settings.admin_token)
    if first_token:
        # Printed once, to the terminal, never to a log: it is stored only as a hash.
        print(
            "\nringfence: created the first admin token (it will not be shown again):\n\n"
            f"    {first_token}\n\n"
            "    export RINGFENCE_TOKEN=<the token above>\n",
            file=sys.stdout, flush=True,
        )
    print(f"ringfence: serving http://{settings.host}:{settings.port} on {describe(settings.db)}",
          flush=True)
    app = create_app(services, settings)
    try:
        # Streams never end on their own: on shutdown give them a moment, then close them;
        # SDK clients reconnect (to another replica, or to this one when it is back).
        uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                    server_header=False, timeout_graceful_shutdown=2)
    finally:
        store.close()
