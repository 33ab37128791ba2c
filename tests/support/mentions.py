"""Whether an answer mentions a value, for tests that check what must not leak.

A plain substring test over an answer's JSON is time-dependent: ids carry a timestamp in
base32 ("resp_01m955...", "conv_..."), so a secret such as 955 turns up inside an id for a
stretch of minutes. A value counts only as a token of its own.
"""

from __future__ import annotations

import json
import re
from typing import Any


def mentions(value: Any, word: str) -> bool:
    text = value if isinstance(value, str) else json.dumps(value)
    return re.search(rf"(?<![0-9A-Za-z_]){re.escape(word)}(?![0-9A-Za-z_])", text) is not None
