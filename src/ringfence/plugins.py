"""Loading validators registered under the `ringfence.validators` entry point group."""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import entry_points

from ringfence.core.validation import Validator
from ringfence.errors import RingfenceError

GROUP = "ringfence.validators"


class PluginError(RingfenceError):
    title = "Validator plugin failed to load"


def load_validators(disabled: Iterable[str] = ()) -> list[Validator]:
    """Every registered validator but the disabled ones.

    A validator that fails to load stops the server from starting: running
    without a check someone installed would let through what it exists to stop.
    """
    off = set(disabled)
    validators = []
    for entry in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        if entry.name in off:
            continue
        try:
            check = entry.load()
        except Exception as exc:
            raise PluginError(
                f"validator {entry.name!r} ({entry.value}) failed to load: {type(exc).__name__}: {exc}; "
                f"fix it, or disable it with RINGFENCE_DISABLED_VALIDATORS={entry.name}"
            ) from None
        validators.append(Validator.wrap(entry.name, check))
    return validators
