"""ringfence: trust, but canary."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Client", "__version__"]

if TYPE_CHECKING:
    from ringfence.sdk import Client


def __getattr__(name: str) -> Any:
    # Imported on first use, so `import ringfence.core` (the server, the CLI) does not pay for httpx and threads.
    if name == "Client":
        from ringfence.sdk import Client

        return Client
    raise AttributeError(f"module 'ringfence' has no attribute {name!r}")
