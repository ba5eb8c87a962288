"""JSON as the command line prints it: exact data, nothing a terminal would act on."""

from __future__ import annotations

import json
import re

__all__ = ["dump_json"]

# json.dumps escapes C0 controls itself; with ensure_ascii=False these would pass raw.
_JSON_RAW = re.compile(r"[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def dump_json(value: object, *, indent: int | None = 2) -> str:
    """``value`` as indented JSON in which every control character is a ``\\u`` escape.

    The data is kept exactly; only a terminal is kept from acting on it. With
    ``indent=None`` the JSON is one line.
    """
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    return _JSON_RAW.sub(lambda found: f"\\u{ord(found.group()):04x}", text)
