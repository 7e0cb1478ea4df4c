"""JSON encoding that never fails, shared by the writers and the stages.

orjson is the fast path. What it refuses (integers beyond 64 bits, lone
surrogates, nesting deeper than 254) is made JSON-safe and written by the
standard library, which keeps big integers exact.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

__all__ = ["MAX_JSON_DEPTH", "TRUNCATED_VALUE", "json_safe", "dumps_json"]

# Deeper values are cut (orjson refuses depth > 254; the fallback must not
# recurse without bound). A php_leaks record keeps the exact leaked text, so
# nothing is lost when its parsed value is cut.
MAX_JSON_DEPTH = 200
TRUNCATED_VALUE = {"__truncated__": f"nested deeper than {MAX_JSON_DEPTH} levels"}


def json_safe(value: Any, depth: int = 0) -> Any:
    """``value`` with everything JSON cannot hold replaced: NaN and infinities
    by null (as orjson writes them), lone surrogates by U+FFFD, unknown types
    by their text, and containers deeper than :data:`MAX_JSON_DEPTH` cut."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", errors="replace")
    if hasattr(value, "to_json"):
        return json_safe(value.to_json(), depth)
    if isinstance(value, dict):
        if depth >= MAX_JSON_DEPTH:
            return dict(TRUNCATED_VALUE)
        return {json_safe(key if isinstance(key, str) else str(key)): json_safe(item, depth + 1)
                for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        if depth >= MAX_JSON_DEPTH:
            return dict(TRUNCATED_VALUE)
        return [json_safe(item, depth + 1) for item in value]
    return json_safe(str(value), depth)


def _default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def dumps_json(value: Any) -> bytes:
    """Compact, valid JSON for ``value``; never raises."""
    try:
        return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(json_safe(value), ensure_ascii=False, allow_nan=False,
                          separators=(",", ":")).encode("utf-8")
