"""Server-Sent Events parsing, just what /v1/stream sends.

Written here rather than taken from httpx-sse so that the SDK, which every
service embeds, depends on httpx alone: the format is a few lines of text rules
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Event:
    event: str
    data: str
    id: str | None = None


def parse(lines: Iterable[str]) -> Iterator[Event]:
    """Events from the lines of a stream (without their line endings).

    Comments (`: ping`) are skipped: they only keep the connection and the
    read timeout alive. An event without data is not dispatched, as the spec says.
    """
    event, event_id = "", None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield Event(event or "message", "\n".join(data), event_id)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
        elif field == "id" and "\0" not in value:
            event_id = value  # the last id carries over to later events, per the spec
