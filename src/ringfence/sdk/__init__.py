"""The SDK services embed: `ringfence.Client`. Depends on httpx and ringfence.core only."""

from ringfence.sdk.client import Client, Status

__all__ = ["Client", "Status"]
