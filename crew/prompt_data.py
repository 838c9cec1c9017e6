"""How outside text enters a prompt: as JSON data inside <untrusted> markers it cannot close.

Everything that came from outside leadq (signup fields, website text, the CRM, and what
an agent made of them) reaches a prompt only through `untrusted`; the prompts in
config/crew say that such blocks are data, never instructions.
"""

from __future__ import annotations

import json
from typing import Any


def untrusted(value: Any) -> str:
    """Data for the prompt: JSON, with anything that could close the <untrusted> block defused."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e")


def json_text(raw: str) -> str:
    """The JSON object in an answer, without code fences a model may add."""
    text = raw.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    return text
