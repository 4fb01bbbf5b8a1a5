"""Write to an ASGI connection without a task per write, unless the connection is full.

Fanning one change out to thousands of streams the usual way wakes one task per
stream, and each wake costs more than the write itself. An ASGI `send` only needs
to wait when the connection's buffer is full (flow control); otherwise it runs to the
end without suspending. So we run it by hand: when it finishes at once (nearly
always), no task was needed; when it does suspend, the caller gets an awaitable for
the rest of it, to finish in a task of its own, so one slow reader never holds up
the loop that writes to everyone else.
"""

from __future__ import annotations

import types
from collections.abc import Awaitable, Generator
from typing import Any

from starlette.types import Message, Send


@types.coroutine
def _rest_of(steps: Generator[Any, Any, None], blocked_on: Any) -> Generator[Any, Any, None]:
    try:
        yield blocked_on  # the event loop's future the send waits on: the task resumes us when it is done
    except BaseException:
        steps.close()
        raise
    yield from steps


def send_now(send: Send, message: Message) -> Awaitable[None] | None:
    """Run `send(message)` as far as it goes without waiting: None when it is done,
    otherwise an awaitable that finishes it. Errors of the first step are raised here."""
    steps = send(message).__await__()
    try:
        blocked_on = steps.send(None)
    except StopIteration:
        return None
    return _rest_of(steps, blocked_on)
