"""Canonical JSON and the content hash of a revision.

Canonical form: keys sorted, no insignificant whitespace, UTF-8 text, no NaN or
Infinity (they are not JSON). Two values that differ only in key order have the
same canonical form, hence the same hash.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

JSON = Any  # a value made of dict, list, str, int, float, bool and None


def canonical_json(value: JSON) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def content_hash(value: JSON) -> str:
    """`sha256:<hex>` of the canonical JSON of `value`."""
    return "sha256:" + hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()
